"""Type-guarded comparisons on a value inside a JSON column, one meaning on both databases.

`JsonCondition(column, path, op, value)` is a boolean SQL expression that is
never NULL, so `not`, `neq` and `not_exists` are plain negations. Its meaning:

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
    """`op` applied to `column` at `path` (a tuple of object keys)."""

    output_field = BooleanField()
    conditional = True
    arity = 1

    def __init__(self, column, path: tuple[str, ...], op: str, value=None):
        super().__init__(column)
        self.path, self.op, self.value = tuple(path), op, value

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
        return f"COALESCE(({sql}), false)", (*params, *own)


class _Condition:
    """Builds (sql, params) for one operator; the column SQL is repeated, its params are not
    (the column is a plain column reference, which has none). A missing path makes the type
    test NULL, so a negation coalesces before it negates."""

    def build(self, op: str, value):
        if op == "exists":
            return self.exists()
        if op == "not_exists":
            sql, params = self.exists()
            return f"NOT COALESCE(({sql}), {self.false})", params
        if op == "eq":
            return self.equal(value)
        if op == "neq":
            sql, params = self.equal(value)
            return f"NOT COALESCE(({sql}), {self.false})", params
        if op == "in":
            return self.any_of([self.equal(item) for item in value])
        if op in ORDER:
            return self.order(ORDER[op], value)
        if op == "contains":
            return self.contains(value)
        raise ValueError(f"unknown operator {op!r}")

    @staticmethod
    def any_of(parts):
        return " OR ".join(f"({sql})" for sql, _ in parts), tuple(p for _, params in parts for p in params)


class SqliteCondition(_Condition):
    false = "0"

    def __init__(self, column: str, path: str):
        self.type = f"json_type({column}, %s)"
        self.value = f"json_extract({column}, %s)"
        self.column, self.path = column, path

    def exists(self):
        return f"{self.type} IS NOT NULL AND {self.type} != 'null'", (self.path, self.path)

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
    false = "false"

    def __init__(self, column: str, path: list[str]):
        self.json = f"({column} #> %s::text[])"
        self.type = f"jsonb_typeof({self.json})"
        self.text = f"({self.json} #>> '{{}}')"
        self.path = path

    def exists(self):
        return f"{self.type} IS NOT NULL AND {self.type} != 'null'", (self.path, self.path)

    def equal(self, value):
        kind = json_kind(value)
        if kind in (TRUE, FALSE):
            return f"{self.type} = 'boolean' AND {self.json} = '{kind}'::jsonb", (self.path, self.path)
        if kind == NUMBER:
            return (f"{self.type} = 'number' AND {self.json} = %s::jsonb",
                    (self.path, self.path, json.dumps(value)))
        return f"{self.type} = 'string' AND {self.text} = %s", (self.path, self.path, value)

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
