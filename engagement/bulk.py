"""Insert-or-ignore and upsert with returned rows, on PostgreSQL and SQLite alike.

`bulk_create(ignore_conflicts=True)` returns no ids and on SQLite swallows
unrelated errors too (docs/ARCHITECTURE.md §3); this helper emits
`INSERT … ON CONFLICT (…) DO NOTHING | DO UPDATE … RETURNING …`, which both
databases understand, and reports which rows were inserted.
"""

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from django.db import connection, models

CHUNK_ROWS = 500
PG_CHUNK_ROWS = 5000


def insert_returning(
    model: type[models.Model],
    rows: Sequence[dict],
    *,
    conflict_fields: Iterable[str],
    update_fields: Iterable[str] = (),
    update_expressions: Mapping[str, str] | None = None,
    returning: Sequence[str] = ("id",),
    conflict_where: Mapping[str, str | int | bool] | None = None,
) -> list[dict]:
    """Insert `rows` (dicts of field name → value); return one dict per row written.

    Without `update_fields`, conflicting rows are skipped and absent from the
    result (insert-or-ignore). With them, conflicting rows are updated from the
    incoming values and returned too (upsert). `update_expressions` maps more
    field names to SQL for their new value, where `{table}` names the stored
    row and `EXCLUDED` the incoming one (e.g. a counter: `{table}.n + EXCLUDED.n`);
    the caller writes it for `connection.vendor`. `conflict_where` names the
    predicate of a partial unique index as field → literal (`{"status": "active"}`
    for `ON CONFLICT (bucket_id, user_id) WHERE status = 'active'`): both databases
    need it to pick that index as the conflict target. No `conflict_fields` (insert-or-ignore
    only) skips a row that violates any unique key. Chunked to stay under
    SQLite's parameter limit; one statement per chunk.
    """
    if not rows:
        return []
    names = list(rows[0])
    fields = [model._meta.get_field(name) for name in names]
    conflict = [model._meta.get_field(name).column for name in conflict_fields]
    qn = connection.ops.quote_name
    predicate = _index_predicate(model, conflict_where)
    table = qn(model._meta.db_table)
    updates = [
        f"{qn(model._meta.get_field(name).column)} = EXCLUDED.{qn(model._meta.get_field(name).column)}"
        for name in update_fields
    ] + [
        f"{qn(model._meta.get_field(name).column)} = {sql.format(table=table)}"
        for name, sql in (update_expressions or {}).items()
    ]
    returned = [model._meta.get_field(name) for name in returning]
    results: list[dict] = []
    if connection.vendor == "postgresql":
        per_chunk = PG_CHUNK_ROWS  # one array parameter per column, whatever the row count
    else:
        per_chunk = max(1, min(CHUNK_ROWS, 30000 // max(1, len(fields))))
    for start in range(0, len(rows), per_chunk):
        chunk = rows[start : start + per_chunk]
        sql, params = _statement(model, names, fields, conflict, updates, returned, chunk, predicate)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            for values in cursor.fetchall():
                results.append(_decode(returned, values))
    return results


def _index_predicate(model, where: Mapping | None) -> str:
    """` WHERE "status" = 'active'`: literals only (an index predicate cannot take parameters)."""
    if not where:
        return ""
    qn = connection.ops.quote_name
    parts = []
    for name, value in where.items():
        column = qn(model._meta.get_field(name).column)
        if isinstance(value, bool):
            literal = ("true" if value else "false") if connection.vendor == "postgresql" else str(int(value))
        elif isinstance(value, int):
            literal = str(value)
        elif isinstance(value, str) and re.fullmatch(r"[A-Za-z0-9_.:-]*", value):
            literal = f"'{value}'"
        else:
            raise ValueError(f"an index predicate takes plain literals, not {value!r}")
        parts.append(f"{column} = {literal}")
    return " WHERE " + " AND ".join(parts)


def _statement(model, names, fields, conflict, updates, returned, chunk, predicate=""):
    """PostgreSQL gets one array per column (`SELECT … FROM unnest(…)`): a handful of
    parameters instead of rows × columns. SQLite gets a multi-row VALUES list."""
    qn = connection.ops.quote_name
    columns = ", ".join(qn(f.column) for f in fields)
    if connection.vendor == "postgresql":
        arrays = ", ".join(f"%s::{field.db_type(connection)}[]" for field in fields)
        source = f"SELECT * FROM unnest({arrays})"
        params = [_pg_column(field, [row[name] for row in chunk])
                  for name, field in zip(names, fields, strict=True)]
    else:
        prepared = [
            _prepared_column(field, [row[name] for row in chunk])
            for name, field in zip(names, fields, strict=True)
        ]
        row_sql = "(" + ", ".join(["%s"] * len(fields)) + ")"
        source = "VALUES " + ", ".join([row_sql] * len(chunk))
        params = [column[i] for i in range(len(chunk)) for column in prepared]
    action = ("DO UPDATE SET " + ", ".join(updates)) if updates else "DO NOTHING"
    target = f" ({', '.join(qn(c) for c in conflict)}){predicate}" if conflict else ""  # none: any key
    sql = (
        f"INSERT INTO {qn(model._meta.db_table)} ({columns}) {source}"
        f" ON CONFLICT{target} {action}"
        f" RETURNING {', '.join(qn(f.column) for f in returned)}"
    )
    return sql, params


def _pg_column(field, values: list) -> str | list:
    """One column of a PostgreSQL statement as ONE text parameter, an array literal, when its
    values are native (text, integers, booleans, aware datetimes) or JSON; otherwise the
    prepared list. Django's psycopg cursor binds on the client, where a list parameter is
    quoted element by element in Python: that was the largest CPU cost of a drain batch."""
    literal = _array_literal(field, values)
    return literal if literal is not None else _prepared_column(field, values)


_AS_TEXT = {str: str, int: str, bool: lambda v: "t" if v else "f", datetime: datetime.isoformat}


def _array_literal(field, values: list) -> str | None:
    if isinstance(field, models.JSONField):
        texts = [None if value is None else json.dumps(value, cls=field.encoder) for value in values]
    else:
        native = _native_type(field)
        if native is None or not all(_already_native(value, native) for value in values):
            return None
        texts = [None if value is None else _AS_TEXT[native](value) for value in values]
    return "{" + ",".join("NULL" if text is None else _array_element(text) for text in texts) + "}"


def _array_element(text: str) -> str:
    """A quoted array element: only `\\` and `"` are special inside the quotes."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _prepared_column(field, values: list) -> list:
    """The column's values as the database driver takes them.

    `get_db_prep_save` per value was the largest cost of a bulk insert (a
    tenth of an ingest request's CPU). For a column whose values are already
    of the type the driver adapts itself — str for text, int for integers and
    keys, bool, aware datetimes on PostgreSQL — it is the identity, so it is
    skipped; anything else (JSON, naive or SQLite datetimes, odd types) still
    goes through the field.
    """
    native = _native_type(field)
    if native is not None and all(_already_native(value, native) for value in values):
        return values
    return [field.get_db_prep_save(value, connection) for value in values]


def _already_native(value, native: type) -> bool:
    if value is None:
        return True
    return type(value) is native and (native is not datetime or value.tzinfo is not None)


def _native_type(field) -> type | None:
    if field.is_relation:
        field = field.target_field
    if isinstance(field, models.BooleanField):
        return bool
    if isinstance(field, models.CharField | models.TextField):
        return str
    if isinstance(field, models.IntegerField | models.AutoField):
        return int
    if isinstance(field, models.DateTimeField) and connection.vendor == "postgresql":
        return datetime
    return None


def _decode(fields, values) -> dict:
    return {
        field.attname: field.to_python(value)
        for field, value in zip(fields, values, strict=True)
    }


def update_returning(
    model: type[models.Model],
    rows: Sequence[dict],
    *,
    common: dict | None = None,
    where: tuple[str, Sequence] = ("", ()),
) -> list:
    """Update many rows, each with its own values, in one statement per chunk; return the
    primary keys of the rows updated.

    `rows` are dicts with `id` and the same other field names (per-row values);
    `common` holds values every row gets; `where` is an extra SQL condition on the
    table (`"status" = %s`, with its parameters) that makes the update conditional.
    `UPDATE … FROM (unnest(…))` on PostgreSQL, `UPDATE … FROM (VALUES …)` on SQLite.
    """
    if not rows:
        return []
    names = [name for name in rows[0] if name != "id"]
    fields = [model._meta.get_field(name) for name in names]
    common_fields = [(model._meta.get_field(name), value) for name, value in (common or {}).items()]
    if connection.vendor == "postgresql":
        per_chunk = PG_CHUNK_ROWS
    else:
        per_chunk = max(1, min(CHUNK_ROWS, 30000 // (len(fields) + 1)))
    updated: list = []
    for start in range(0, len(rows), per_chunk):
        chunk = rows[start : start + per_chunk]
        sql, params = _update_statement(model, names, fields, common_fields, where, chunk)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            updated += [pk for (pk,) in cursor.fetchall()]
    return updated


def _update_statement(model, names, fields, common_fields, where, chunk):
    qn = connection.ops.quote_name
    table = qn(model._meta.db_table)
    pk = model._meta.pk
    aliases = ["row_id"] + [f"v_{field.column}" for field in fields]
    if connection.vendor == "postgresql":
        arrays = ", ".join(f"%s::{f.db_type(connection)}[]" for f in [pk, *fields])
        source = f"SELECT * FROM unnest({arrays}) AS u({', '.join(aliases)})"
        params = [_pg_column(pk, [row["id"] for row in chunk])] + [
            _pg_column(field, [row[name] for row in chunk]) for name, field in zip(names, fields, strict=True)
        ]
    else:
        columns = [[pk.get_db_prep_save(row["id"], connection) for row in chunk]] + [
            [field.get_db_prep_save(row[name], connection) for row in chunk]
            for name, field in zip(names, fields, strict=True)
        ]
        row_sql = "(" + ", ".join(["%s"] * len(aliases)) + ")"
        named = ", ".join(f"column{i + 1} AS {alias}" for i, alias in enumerate(aliases))
        source = f"SELECT {named} FROM (VALUES {', '.join([row_sql] * len(chunk))})"
        params = [column[i] for i in range(len(chunk)) for column in columns]
    sets = [f"{qn(field.column)} = v.{alias}" for field, alias in zip(fields, aliases[1:], strict=True)]
    sets += [f"{qn(field.column)} = %s" for field, _ in common_fields]
    common_params = [field.get_db_prep_save(value, connection) for field, value in common_fields]
    condition, condition_params = where
    sql = (
        f"UPDATE {table} SET {', '.join(sets)} FROM ({source}) AS v"
        f" WHERE {table}.{qn(pk.column)} = v.row_id" + (f" AND ({condition})" if condition else "")
        + f" RETURNING {table}.{qn(pk.column)}"
    )
    return sql, [*common_params, *params, *condition_params]


def insert_select(
    model: type[models.Model],
    per_row: Mapping[str, Sequence],
    *,
    constants: Mapping[str, object] = {},  # noqa: B006 - read only
    expressions: Mapping[str, tuple[str, Sequence]] | None = None,
    conflict_fields: Iterable[str] = (),
    returning: Sequence[str] = ("id",),
) -> list[tuple]:
    """`INSERT … SELECT` of one row per element of `per_row`'s columns, with `constants` for
    every row: the set-based twin of `insert_returning` for writers whose rows differ in a
    column or two (a user id, a hash) and share all the rest.

    Each per-row column is bound as ONE parameter, whatever its length: a `'{1,2,3}'`
    array literal cast to `bigint[]` and unnested on PostgreSQL, a JSON array read with
    `json_each` on SQLite. Constants are bound once, prepared by their field exactly as
    `insert_returning` prepares them, so both writers store the same values.
    `expressions` maps further field names to SQL over the per-row columns (`s.<column>`)
    with its parameters. With `conflict_fields` it is insert-or-ignore; the returned
    tuples (`returning` fields) are the rows written.
    """
    names = list(per_row)
    if not names or not len(per_row[names[0]]):
        return []
    sql, params = insert_select_statement(model, per_row, constants=constants, expressions=expressions,
                                          conflict_fields=conflict_fields, returning=returning)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def insert_select_statement(
    model: type[models.Model],
    per_row: Mapping[str, Sequence],
    *,
    constants: Mapping[str, object] = {},  # noqa: B006 - read only
    expressions: Mapping[str, tuple[str, Sequence]] | None = None,
    conflict_fields: Iterable[str] = (),
    returning: Sequence[str] = ("id",),
) -> tuple[str, list]:
    """The SQL and parameters `insert_select` runs, for a caller that wraps it (a CTE)."""
    names = list(per_row)
    meta, qn = model._meta, connection.ops.quote_name
    row_fields = [meta.get_field(name) for name in names]
    source, source_params = _row_source(row_fields, [per_row[name] for name in names])
    columns, select, select_params = [], [], []
    for field in row_fields:
        columns.append(qn(field.column))
        select.append(f"s.{qn(field.column)}")
    for name, (sql, params) in (expressions or {}).items():
        columns.append(qn(meta.get_field(name).column))
        select.append(sql)
        select_params += list(params)
    for name, value in constants.items():
        field = meta.get_field(name)
        columns.append(qn(field.column))
        select.append(_typed_parameter(field))
        select_params.append(field.get_db_prep_save(value, connection))
    conflict = ", ".join(qn(meta.get_field(name).column) for name in conflict_fields)
    # `WHERE true`: SQLite cannot otherwise tell an upsert's ON CONFLICT from a join's ON.
    sql = (
        f"INSERT INTO {qn(meta.db_table)} ({', '.join(columns)}) SELECT {', '.join(select)}"
        f" FROM {source} WHERE true" + (f" ON CONFLICT ({conflict}) DO NOTHING" if conflict else "")
        + f" RETURNING {', '.join(qn(meta.get_field(name).column) for name in returning)}"
    )
    return sql, [*select_params, *source_params]


def _typed_parameter(field) -> str:
    """PostgreSQL types a bare parameter in a SELECT list as text: cast it to the column's type."""
    return f"%s::{field.db_type(connection)}" if connection.vendor == "postgresql" else "%s"


def _row_source(fields, columns: list[Sequence]) -> tuple[str, list]:
    """A derived table `s` with one row per element and one column per field, from one
    parameter per column."""
    qn = connection.ops.quote_name
    aliases = [qn(field.column) for field in fields]
    if connection.vendor == "postgresql":
        arrays = ", ".join(f"%s::{_scalar_type(field)}[]" for field in fields)
        return f"unnest({arrays}) AS s({', '.join(aliases)})", [_pg_array(values) for values in columns]
    rows = json.dumps([list(row) for row in zip(*columns, strict=True)])
    picked = ", ".join(f"json_extract(j.value, '$[{i}]') AS {alias}" for i, alias in enumerate(aliases))
    return f"(SELECT {picked} FROM json_each(%s) AS j) AS s", [rows]


def _scalar_type(field) -> str:
    if field.is_relation:
        field = field.target_field
    return field.rel_db_type(connection) if isinstance(field, models.AutoField) else field.db_type(connection)


def _pg_array(values: Sequence) -> str:
    """A PostgreSQL array literal: integers as they are, text quoted (`"` and `\\` escaped)."""
    def element(value) -> str:
        if value is None:
            return "NULL"
        if type(value) is int:
            return str(value)
        if isinstance(value, str):
            return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        raise TypeError(f"insert_select binds integers and text per row, not {type(value).__name__}")

    return "{" + ",".join(map(element, values)) + "}"
