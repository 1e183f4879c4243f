"""One conditional UPDATE for many claimed messages, each with its own values.

On SQLite this is `engagement.bulk.update_returning` (`UPDATE … FROM (VALUES …)`).
On PostgreSQL it is `UPDATE … FROM unnest(…)` too, with two differences that
made delivery's outcome write several times cheaper:

- every column travels as ONE array literal (`'{"a","b"}'::text[]`) built here,
  so psycopg's client-side binding quotes one string per column instead of
  every element in Python (campaigns/id_lists.py says why that matters);
- the lease condition (`lease_token`, `status = 'sending'`) is joined against
  per-row columns of the unnest instead of compared with constants. Compared
  with constants, the planner estimated that almost no row holds a fresh token
  (nearly every row's token is `''`), put a sequential scan of the table on
  the outside of a nested loop and re-ran the unnest for every row it found:
  500 × 500 row builds per batch. Joined, the condition has no selectivity to
  misjudge and the plan is a hash join or an index probe per row.

The statement returns the ids it updated: rows whose lease lapsed are absent.
"""

import json
from collections.abc import Sequence
from datetime import datetime

from django.db import connection, models

from engagement.bulk import update_returning

from .id_lists import array_literal
from .models import Message

Status = Message.Status


def update_held(rows: Sequence[dict], *, token: str | None, common: dict) -> list[int]:
    """Update `rows` (dicts with `id` and the same other field names), setting `common` on
    each too, where the message is still `sending` under `token`; return the updated ids.
    `token=None`: the caller's transaction holds the rows locked, so no condition is needed."""
    if not rows:
        return []
    if connection.vendor != "postgresql":
        qn = connection.ops.quote_name
        held = ("", ()) if token is None else (
            f"{qn('lease_token')} = %s AND {qn('status')} = %s", [token, Status.SENDING])
        return update_returning(Message, rows, where=held, common=common)
    sql, params = _recordset_statement(rows, common) if token is None else _statement(rows, token, common)
    with server_bound_cursor() as cursor:
        cursor.execute(sql, params)
        return [pk for (pk,) in cursor.fetchall()]


def server_bound_cursor():
    """A cursor of Django's PostgreSQL connection that sends parameters apart from the
    statement (the extended protocol) instead of quoting them into its text, as Django's
    client-side binding does. The outcome statement carries a batch's rendered text as a
    few array literals of ~100 KB: bound client-side, psycopg escaped all of it in Python
    and PostgreSQL's lexer then scanned it again as part of the query. Django's cursor
    wrapper is kept, so the statement is logged and counted like any other."""
    from django.db.backends.postgresql.base import ServerBindingCursor

    connection.ensure_connection()
    raw = ServerBindingCursor(connection.connection)
    return connection.make_debug_cursor(raw) if connection.queries_logged else connection.make_cursor(raw)


def _statement(rows: Sequence[dict], token: str | None, common: dict) -> tuple[str, list]:
    qn = connection.ops.quote_name
    table = qn(Message._meta.db_table)
    common, fields = _split_columns(rows, common)
    names = [f.name for f in fields]
    arrays = ["%s::bigint[]"]
    aliases = ["row_id"]
    params = [array_literal(row["id"] for row in rows)]
    condition = f"{table}.{qn('id')} = v.row_id"
    if token is not None:
        arrays += ["%s::text[]", "%s::text[]"]
        aliases += ["held_token", "held_status"]
        params += [_repeat(token, len(rows)), _repeat(Status.SENDING, len(rows))]
        condition += (f" AND {table}.{qn('lease_token')} = v.held_token"
                      f" AND {table}.{qn('status')} = v.held_status")
    values_at = len(aliases)
    arrays += [f"%s::{f.db_type(connection)}[]" for f in fields]
    aliases += [f"v_{f.column}" for f in fields]
    params += [_literal(field, [row[name] for row in rows])
               for name, field in zip(names, fields, strict=True)]
    sets = [f"{qn(f.column)} = v.{alias}" for f, alias in zip(fields, aliases[values_at:], strict=True)]
    constant_sets, common_params = _constant_sets(common)
    sets += constant_sets
    sql = (
        f"UPDATE {table} SET {', '.join(sets)} FROM unnest({', '.join(arrays)}) AS v({', '.join(aliases)})"
        f" WHERE {condition} RETURNING {table}.{qn('id')}"
    )
    return sql, [*common_params, *params]


def _recordset_statement(rows: Sequence[dict], common: dict) -> tuple[str, list]:
    """The locked batch's form (no lease condition): the rows travel as ONE JSON document read
    with `json_to_recordset`, which `json.dumps` writes in C, where building an array literal
    per column cost a Python string operation per value. Each column's values are checked as
    the array literals check them (a str for text, an int for integers, aware datetimes)."""
    qn = connection.ops.quote_name
    table = qn(Message._meta.db_table)
    common, fields = _split_columns(rows, common)
    for field in fields:
        _check(field, [row[field.name] for row in rows])
    record = ", ".join([f"{qn('id')} bigint"] + [f"{qn(f.name)} {f.db_type(connection)}" for f in fields])
    sets = [f"{qn(f.column)} = v.{qn(f.name)}" for f in fields]
    constant_sets, common_params = _constant_sets(common)
    sets += constant_sets
    document = _records(rows, fields)
    sql = (
        f"UPDATE {table} SET {', '.join(sets)} FROM json_to_recordset(%s::json) AS v({record})"
        f" WHERE {table}.{qn('id')} = v.{qn('id')} RETURNING {table}.{qn('id')}"
    )
    return sql, [*common_params, document]


def _split_columns(rows: Sequence[dict], common: dict) -> tuple[dict, list]:
    """(common, varying fields) of an outcome batch: a column every row holds the same plain
    value in joins `common`, one constant instead of an array of equal elements (checked as
    an array of it would be); the others vary per row. `id` is the key, neither."""
    common = {**common}
    varying = []
    for name in rows[0]:
        if name == "id":
            continue
        field = Message._meta.get_field(name)
        if (value := _shared(rows, name)) is not _VARIES:
            _literal(field, [value])  # the same type checks as an array
            common[name] = value
        else:
            varying.append(field)
    return common, varying


def _constant_sets(common: dict) -> tuple[list[str], list]:
    """`column = %s` assignments and their parameters for the batch's constant columns."""
    qn = connection.ops.quote_name
    fields = [(Message._meta.get_field(name), value) for name, value in common.items()]
    return ([f"{qn(field.column)} = %s" for field, _ in fields],
            [field.get_db_prep_save(value, connection) for field, value in fields])


def _check(field, values: list) -> None:
    """The type checks of `_literal`, without building the literal."""
    if isinstance(field, models.JSONField):
        if field.encoder is not None:
            raise TypeError(f"{field.name}: a JSON column with its own encoder needs the array form")
    elif isinstance(field, models.DateTimeField):
        if not all(v is None or (isinstance(v, datetime) and v.tzinfo is not None) for v in values):
            raise TypeError("a timestamp column takes aware datetimes")
    elif isinstance(field, models.IntegerField):
        if not all(v is None or (isinstance(v, int) and not isinstance(v, bool)) for v in values):
            raise TypeError("an integer column takes int")
    elif not isinstance(field, models.CharField | models.TextField):
        raise TypeError(f"no recordset column for {type(field).__name__} ({field.name})")
    elif not all(v is None or isinstance(v, str) for v in values):  # SafeString is a str
        raise TypeError("a text column takes str")


def _records(rows: Sequence[dict], fields: list) -> str:
    """The rows' ids and `fields` as a JSON array of objects (timestamps in ISO 8601)."""
    names = ["id", *(f.name for f in fields)]
    stamps = {f.name for f in fields if isinstance(f, models.DateTimeField)}
    if stamps:
        records = [{name: (row[name].isoformat() if name in stamps and row[name] is not None else row[name])
                    for name in names} for row in rows]
    else:
        records = [{name: row[name] for name in names} for row in rows]
    return json.dumps(records, ensure_ascii=False)


_VARIES = object()
_SCALARS = (str, int, type(None), datetime)


def _shared(rows: Sequence[dict], name: str):
    """The value every row has for `name`, or _VARIES. Only plain scalars of one exact type
    count as equal (`1 == True` and `1 == 1.0` must not merge; JSON values never do)."""
    first = rows[0][name]
    kind = type(first)
    if kind not in _SCALARS:
        return _VARIES
    for row in rows:
        value = row[name]
        if type(value) is not kind or value != first:
            return _VARIES
    return first


def _repeat(value: str, n: int) -> str:
    element = _quoted(value)
    return "{" + ",".join([element] * n) + "}"


def _literal(field, values: list) -> str:
    """A PostgreSQL array literal of one column's values, for `::<type>[]`.
    Inlined per type: it runs for every row and column of a batch."""
    if isinstance(field, models.JSONField):
        encoder = field.encoder
        values = [None if v is None else json.dumps(v, cls=encoder) for v in values]
    elif isinstance(field, models.DateTimeField):
        if any(v is not None and (not isinstance(v, datetime) or v.tzinfo is None) for v in values):
            raise TypeError("a timestamp column takes aware datetimes")
        values = [None if v is None else v.isoformat() for v in values]
    elif isinstance(field, models.IntegerField):
        if any(v is not None and (isinstance(v, bool) or not isinstance(v, int)) for v in values):
            raise TypeError("an integer column takes int")
        return "{" + ",".join("NULL" if v is None else str(v) for v in values) + "}"
    elif not isinstance(field, models.CharField | models.TextField):
        raise TypeError(f"no array literal for {type(field).__name__} ({field.name})")
    elif any(v is not None and not isinstance(v, str) for v in values):  # SafeString is a str
        raise TypeError("a text column takes str")
    return "{" + ",".join(
        "NULL" if v is None else '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values
    ) + "}"


def _quoted(text: str) -> str:
    """An array element in double quotes: backslash and double quote escaped."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
