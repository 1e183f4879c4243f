"""Type-guarded comparisons on a value inside a JSON column, one meaning on both databases.

`JsonCondition(column, path, op, value)` is a boolean SQL expression that is
never NULL (unless asked for with `nullable=True`, which only a condition no
`not` wraps may do), so `not`, `neq` and `not_exists` are plain negations. Its meaning:

- the value at the dotted `path` is *missing* when the key is absent or JSON null;
- `eq` / `in` match only a stored value of the same JSON type (`"5"` is not `5`,
  `true` is not `1`); numbers compare as numbers (`1` equals `1.0`);
- `gt` `gte` `lt` `lte` compare numbers with numbers and strings with strings
  (by code point: `COLLATE "C"` on PostgreSQL, SQLite's binary default);
- `contains` is a substring test on a stored string and a membership test
  (same type) on a stored array;
- `exists` is "not missing"; `neq` and `not_exists` are the negations of `eq`
  and `exists`, so they hold for a missing value.

SQLite's `json_extract` turns `true` into `1`, so every comparison is guarded
by `json_type` there and by `jsonb_typeof` on PostgreSQL.
"""

import json

from django.db.models import BooleanField, Func
from django.db.utils import NotSupportedError

NUMBER, STRING, TRUE, FALSE = "number", "string", "true", "false"
ORDER = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
SQLITE_TYPES = {NUMBER: "('integer', 'real')", STRING: "('text')", TRUE: "('true')", FALSE: "('false')"}


def json_kind(value) -> str:
    """The JSON type of a criteria scalar."""
    if isinstance(value, bool):
        return TRUE if value else FALSE
    if isinstance(value, int | float):
        return NUMBER
    if isinstance(value, str):
        return STRING
    raise TypeError(f"not a JSON scalar: {type(value).__name__}")


class JsonCondition(Func):
    """`op` applied to `column` at `path` (a tuple of object keys).

    `nullable=True` lets the PostgreSQL SQL be NULL (read as false) for a missing
    value, which saves a `COALESCE`; only a caller that never negates it may ask
    for that (a property leaf outside any `not`, an event's `where`). `neq` and
    `not_exists` are never NULL either way. SQLite always coalesces.
    """

    output_field = BooleanField()
    conditional = True
    arity = 1

    def __init__(self, column, path: tuple[str, ...], op: str, value=None, *, nullable: bool = False):
        super().__init__(column)
        self.path, self.op, self.value, self.nullable = tuple(path), op, value, nullable

    def as_sql(self, compiler, connection, **extra):
        raise NotSupportedError(f"criteria support PostgreSQL and SQLite, not {connection.vendor}")

    def _column(self, compiler, connection):
        sql, params = compiler.compile(self.source_expressions[0])
        if params:  # the column SQL is repeated inside the condition; its params would not be
            raise ValueError("JsonCondition takes a plain column")
        return sql, ()

    def as_sqlite(self, compiler, connection, **extra):
        column, params = self._column(compiler, connection)
        path = "$" + "".join(f'."{key}"' for key in self.path)
        sql, own = SqliteCondition(column, path).build(self.op, self.value)
        return f"COALESCE(({sql}), 0)", (*params, *own)

    def as_postgresql(self, compiler, connection, **extra):
        column, params = self._column(compiler, connection)
        sql, own = PostgresCondition(column, list(self.path)).build(self.op, self.value)
        if self.nullable or self.op in PostgresCondition.NEVER_NULL:
            return f"({sql})", (*params, *own)
        return f"COALESCE(({sql}), false)", (*params, *own)


class _Condition:
    """Builds (sql, params) for one operator; the column SQL is repeated, its params are not
    (the column is a plain column reference, which has none)."""

    def build(self, op: str, value):
        if op == "exists":
            return self.exists()
        if op == "not_exists":
            return self.not_exists()
        if op == "eq":
            return self.equal(value)
        if op == "neq":
            return self.not_equal(value)
        if op == "in":
            return self.any_of(value)
        if op in ORDER:
            return self.order(ORDER[op], value)
        if op == "contains":
            return self.contains(value)
        raise ValueError(f"unknown operator {op!r}")


class SqliteCondition(_Condition):
    """A missing path makes the type test NULL, so a negation coalesces before it negates."""

    false = "0"

    def __init__(self, column: str, path: str):
        self.type = f"json_type({column}, %s)"
        self.value = f"json_extract({column}, %s)"
        self.column, self.path = column, path

    def exists(self):
        return f"{self.type} IS NOT NULL AND {self.type} != 'null'", (self.path, self.path)

    def not_exists(self):
        sql, params = self.exists()
        return f"NOT COALESCE(({sql}), 0)", params

    def not_equal(self, value):
        sql, params = self.equal(value)
        return f"NOT COALESCE(({sql}), 0)", params

    def any_of(self, values):
        parts = [self.equal(item) for item in values]
        return " OR ".join(f"({sql})" for sql, _ in parts), tuple(p for _, params in parts for p in params)

    def equal(self, value):
        kind = json_kind(value)
        if kind in (TRUE, FALSE):
            return f"{self.type} = '{kind}'", (self.path,)
        return f"{self.type} IN {SQLITE_TYPES[kind]} AND {self.value} = %s", (self.path, self.path, value)

    def order(self, operator: str, value):
        kind = json_kind(value)
        return (f"{self.type} IN {SQLITE_TYPES[kind]} AND {self.value} {operator} %s",
                (self.path, self.path, value))

    def contains(self, value):
        kind = json_kind(value)
        member = (f"{self.type} = 'array' AND EXISTS (SELECT 1 FROM json_each({self.column}, %s) AS e "
                  f"WHERE e.type IN {SQLITE_TYPES[kind]}" + (" AND e.value = %s)" if kind in (NUMBER, STRING)
                                                               else ")"))
        member_params = (self.path, self.path, *((value,) if kind in (NUMBER, STRING) else ()))
        if kind != STRING:
            return member, member_params
        substring = f"{self.type} = 'text' AND instr({self.value}, %s) > 0"
        return f"({substring}) OR ({member})", (self.path, self.path, value, *member_params)


class PostgresCondition(_Condition):
    """`->` for a one-key path, `#>` for a dotted one. Equality (`eq`, `neq`, `in`) is one
    jsonb comparison of the extracted value with the criteria value as jsonb: jsonb
    equality already holds only within one JSON type and compares numbers as numbers, so
    it needs no type guard. Orders and `contains` keep `jsonb_typeof` (jsonb orders
    across types). The SQL is NULL for a missing value except for `neq` and `not_exists`,
    which are written never to be NULL."""

    NEVER_NULL = ("neq", "not_exists")

    def __init__(self, column: str, path: list[str]):
        if len(path) == 1:
            self.json, self.text = f"({column} -> %s::text)", f"({column} ->> %s::text)"
            self.path = path[0]
        else:
            self.json, self.text = f"({column} #> %s::text[])", f"({column} #>> %s::text[])"
            self.path = path
        self.type = f"jsonb_typeof({self.json})"

    def exists(self):
        return f"{self.json} <> 'null'::jsonb", (self.path,)

    def not_exists(self):
        return f"COALESCE({self.json}, 'null'::jsonb) = 'null'::jsonb", (self.path,)

    def equal(self, value):
        return f"{self.json} = %s::jsonb", (self.path, _jsonb(value))

    def not_equal(self, value):
        return f"{self.json} IS DISTINCT FROM %s::jsonb", (self.path, _jsonb(value))

    def any_of(self, values):
        return f"{self.json} = ANY(%s::jsonb[])", (self.path, [_jsonb(item) for item in values])

    def order(self, operator: str, value):
        if json_kind(value) == NUMBER:
            return (f"{self.type} = 'number' AND {self.json} {operator} %s::jsonb",
                    (self.path, self.path, json.dumps(value)))
        return (f"{self.type} = 'string' AND {self.text} COLLATE \"C\" {operator} %s COLLATE \"C\"",
                (self.path, self.path, value))

    def contains(self, value):
        member = f"{self.type} = 'array' AND {self.json} @> %s::jsonb"
        member_params = (self.path, self.path, json.dumps([value]))
        if json_kind(value) != STRING:
            return member, member_params
        substring = f"{self.type} = 'string' AND strpos({self.text}, %s) > 0"
        return f"({substring}) OR ({member})", (self.path, self.path, value, *member_params)


def _jsonb(value) -> str:
    """A criteria scalar as jsonb text (its JSON type checked, as `json_kind` does)."""
    json_kind(value)
    return json.dumps(value)
