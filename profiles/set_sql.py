"""Pieces for writing a feature group's computation as SQL: its set-based form.

A group's `sql(users, now)` (declared with `registry.sql_for`) returns one
SELECT of `(user_id, name, value, value_text)` with exactly one row per user of
the relation `profile_users (id, timezone)` and per feature of the group — a
user without data gets the row its feature answers then (0, or NULL). `users`
is a queryset of those users' ids, for `user_id__in=users`: a subquery the
planner can estimate (`profile_users` is a CTE, which it cannot: it then walked
the log's user index row by row instead of scanning the log once). The
set-based refresh (profiles/set_refresh.py) defines both for a range of users
and writes the rows without bringing them to Python.

The shipped groups build their aggregates with the very querysets their Python
compute evaluates (`compute(user_ids, now)` passes a list of ids, the SQL form
the queryset), so the two forms share the filters, the per-row time zone rules
and the JSON rules; only the last step (ratios, the busiest hour, nulls) is
written twice, and a test holds the two together on both databases.
"""

import re

from django.db import connection

USERS = "profile_users"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,199}$")


def queryset_sql(queryset) -> tuple[str, list]:
    sql, params = queryset.query.sql_with_params()
    return sql, list(params)


def timestamp(moment) -> tuple[str, object]:
    """A placeholder and its parameter for a moment compared with stored datetimes."""
    if connection.vendor == "postgresql":
        return "%s::timestamptz", moment
    return "%s", connection.ops.adapt_datetimefield_value(moment)


def as_float(sql: str) -> str:
    """A number as double precision (REAL affinity on SQLite), so a ratio is never an integer division."""
    return f"CAST({sql} AS DOUBLE PRECISION)"


def whole_days(earlier: str, later: str) -> str:
    """Whole days from `earlier` to `later`, rounded down (Python: floor(seconds / 86400))."""
    if connection.vendor == "postgresql":
        return f"FLOOR(EXTRACT(EPOCH FROM ({later} - {earlier})) / 86400)"
    return f"pulse_whole_days({earlier}, {later})"


def bit_or(sql: str) -> str:
    """The aggregate bitwise OR of integers (a registered aggregate on SQLite)."""
    return f"BIT_OR({sql})" if connection.vendor == "postgresql" else f"pulse_bit_or({sql})"


def bit_count(sql: str) -> str:
    """The number of bits set in a non-negative 64-bit integer (NULL stays NULL)."""
    if connection.vendor == "postgresql":
        return f"BIT_COUNT(CAST({sql} AS BIT(64)))"
    return f"pulse_bit_count({sql})"


def greatest(columns: list[str]) -> str:
    """The largest of several non-null values (SQLite's max() takes many arguments)."""
    return f"{'GREATEST' if connection.vendor == 'postgresql' else 'MAX'}({', '.join(columns)})"


def cutoffs(ttls) -> tuple[str, list]:
    """A relation `(name, cutoff)` with one row per (feature name, moment), the moment before
    which (inclusive) that feature's stored value is stale, and its parameters."""
    rows, params = [], []
    for name, moment in ttls:
        placeholder, value = timestamp(moment)
        rows.append(f"SELECT {literal(name)} AS name, {placeholder} AS cutoff")
        params.append(value)
    return " UNION ALL ".join(rows), params


def literal(name: str) -> str:
    """A feature name as an SQL string literal (names are lower-case identifiers: checked here too)."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"not a feature name: {name!r}")
    return f"'{name}'"


def names_relation(names) -> str:
    """A relation `(name)` with one row per feature name."""
    return " UNION ALL ".join(f"SELECT {literal(name)} AS name" for name in names)


def one_row_per_feature(numeric: dict[str, str], joins: str,
                        categorical: dict[str, str] | None = None) -> str:
    """`SELECT user_id, name, value, value_text` for every user of `profile_users` and every
    feature named in `numeric` / `categorical` ({name: SQL of its answer}). `joins` attaches
    the aggregates (LEFT JOINs on `u.id`); a missing aggregate makes the answer's SQL decide."""
    categorical = categorical or {}

    def case(answers: dict[str, str], kind: str) -> str:
        if not answers:
            return f"CAST(NULL AS {kind})"  # typed: an untyped NULL would be text on PostgreSQL
        whens = " ".join(f"WHEN {literal(k)} THEN {v}" for k, v in answers.items())
        return f"CAST(CASE n.name {whens} END AS {kind})"

    value, text = case(numeric, "DOUBLE PRECISION"), case(categorical, "VARCHAR(500)")
    return (
        f"SELECT u.id AS user_id, n.name AS name, {value} AS value, {text} AS value_text "
        f"FROM {USERS} u CROSS JOIN ({names_relation([*numeric, *categorical])}) n {joins}"
    )
