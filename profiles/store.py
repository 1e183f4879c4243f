"""Reading and writing stored values; the invalidation race is settled here.

The race: a computation reads the signals, an invalidating signal arrives and
its drain drops the value, then the computation writes what it read — older
than the invalidation — and that stale value would live a whole TTL. So every
pair keeps an invalidation time and a `generation` (invalidations so far), and
a computation's write is conditional: `… ON CONFLICT DO UPDATE … WHERE
generation = <the generation read before computing>`. An invalidation in
between moves the generation, the write matches nothing and is refused; the
next read recomputes from the new data.

Why a counter and not a comparison of the invalidation time with the time the
computation started: the drain's transaction commits some time after it took
its `now`, and clocks of two machines (or a `--now` in a test) disagree, so
"invalidated after I started" cannot be decided from timestamps. A counter
decides it exactly: on PostgreSQL the conditional UPDATE waits for the drain's
row lock and re-checks the generation after it commits; SQLite has one writer.

Each statement takes every row at once (arrays on PostgreSQL, one JSON
parameter on SQLite), so writing or invalidating a batch is one statement.
"""

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import connection

from .models import ProfileFeatureValue


@dataclass(frozen=True)
class Stored:
    value: float | None
    value_text: str | None
    computed_at: datetime | None
    generation: int
    invalidated_at: datetime | None = None


ABSENT = Stored(None, None, None, 0)


def read(user_ids: Iterable[int], names: Iterable[str] | None = None) -> dict[tuple[int, str], Stored]:
    """The stored rows of these users (and features): one query."""
    rows = ProfileFeatureValue.objects.filter(user_id__in=list(user_ids))
    if names is not None:
        rows = rows.filter(name__in=list(names))
    return {
        (uid, name): Stored(value, text, computed_at, generation, invalidated_at)
        for uid, name, value, text, computed_at, generation, invalidated_at in rows.values_list(
            "user_id", "name", "value", "value_text", "computed_at", "generation", "invalidated_at"
        )
    }


@dataclass(frozen=True)
class Computed:
    user_id: int
    name: str
    value: float | None
    value_text: str | None
    computed_at: datetime
    expected_generation: int


def write(rows: Sequence[Computed]) -> set[tuple[int, str]]:
    """Write computed values where the pair's generation is still the expected one;
    return the pairs written (the others lost the race to an invalidation)."""
    if not rows:
        return set()
    rows = sorted(rows, key=lambda r: (r.user_id, r.name))  # one lock order for every writer
    table = _table()
    columns = [("user_id", "bigint"), ("name", "varchar"), ("value", "float8"), ("value_text", "varchar"),
               ("computed_at", "timestamptz"), ("generation", "bigint")]
    values = [[r.user_id, r.name, r.value, r.value_text, _time(r.computed_at), r.expected_generation]
              for r in rows]
    source, params = _source(columns, values)
    sql = (
        f"INSERT INTO {table} (user_id, name, value, value_text, computed_at, generation) {source} "
        f"ON CONFLICT (user_id, name) DO UPDATE SET value = EXCLUDED.value, "
        f"value_text = EXCLUDED.value_text, computed_at = EXCLUDED.computed_at "
        f"WHERE {table}.generation = EXCLUDED.generation "
        f"RETURNING user_id, name"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {(uid, name) for uid, name in cursor.fetchall()}


def invalidate(pairs: Iterable[tuple[int, str]], now: datetime) -> int:
    """Drop the values of these (user, feature) pairs and move their generation: one statement.

    A pair without a row gets one (no value, generation 1), so a computation that
    began before it saw generation 0 and is refused too."""
    pairs = sorted(set(pairs))
    if not pairs:
        return 0
    table = _table()
    source, params = _source([("user_id", "bigint"), ("name", "varchar")], [list(p) for p in pairs])
    at = "%s::timestamptz" if connection.vendor == "postgresql" else "%s"
    sql = (
        f"INSERT INTO {table} (user_id, name, invalidated_at, generation) "
        f"SELECT v.user_id, v.name, {at}, 1 FROM ({source}) AS v WHERE true "
        f"ON CONFLICT (user_id, name) DO UPDATE SET value = NULL, value_text = NULL, computed_at = NULL, "
        f"invalidated_at = EXCLUDED.invalidated_at, generation = {table}.generation + 1"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [_time(now), *params])
        return cursor.rowcount


def _table() -> str:
    return connection.ops.quote_name(ProfileFeatureValue._meta.db_table)


def _time(moment: datetime):
    return moment if connection.vendor == "postgresql" else connection.ops.adapt_datetimefield_value(moment)


def _source(columns: list[tuple[str, str]], rows: list[list]) -> tuple[str, list]:
    """A SELECT yielding `rows` with these column names: one array per column on
    PostgreSQL, one JSON array of rows on SQLite (json_each), whatever the row count."""
    if connection.vendor == "postgresql":
        arrays = ", ".join(f"%s::{kind}[]" for _, kind in columns)
        names = ", ".join(name for name, _ in columns)
        return (f"SELECT * FROM unnest({arrays}) AS v({names})",
                [[row[i] for row in rows] for i in range(len(columns))])
    picks = ", ".join(f"json_extract(j.value, '$[{i}]') AS {name}" for i, (name, _) in enumerate(columns))
    return f"SELECT {picks} FROM json_each(%s) AS j WHERE true", [json.dumps(rows)]
