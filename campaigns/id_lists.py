"""A batch's list of ids as ONE query parameter, whatever its length.

Django binds parameters client-side with psycopg, so `id IN (%s, %s, … 500)` or a
Python list passed as an array makes psycopg parse a long query and quote every
element in Python: about a quarter of a delivery batch's Python time. Here the
ids travel as one string — a PostgreSQL array literal (`'{1,2,3}'` cast to
`bigint[]`) or, on SQLite, a JSON array read with `json_each` — which is quoted
once. It also keeps SQLite under its bound-parameter limit.

The literal is built from integers only (`operator.index` refuses anything
else, bools included), so no value can change the statement.
"""

import json
import operator
from collections.abc import Iterable

from django.db import connection
from django.db.models import BooleanField
from django.db.models.expressions import RawSQL


def _ints(ids: Iterable) -> list[int]:
    values = []
    for value in ids:
        if isinstance(value, bool):
            raise TypeError("an id list takes integers, not booleans")
        values.append(operator.index(value))
    return values


def array_literal(ids: Iterable) -> str:
    """`'{1,2,3}'`: a PostgreSQL bigint[] literal of `ids`."""
    return "{" + ",".join(map(str, _ints(ids))) + "}"


def ids_match(column: str, ids: Iterable) -> tuple[str, list]:
    """(SQL, params): `column` is one of `ids`. `column` is trusted SQL (a quoted name)."""
    if connection.vendor == "postgresql":
        return f"{column} = ANY(%s::bigint[])", [array_literal(ids)]
    return f"{column} IN (SELECT value FROM json_each(%s))", [json.dumps(_ints(ids))]


def id_in(column: str, ids: Iterable) -> RawSQL:
    """A condition for ORM `filter()`/`exclude()`: the model's `column` is one of `ids`.

    `= ANY(array)` rather than `IN (SELECT unnest(array))`: the planner uses it as an
    index condition (`user_id = ANY(…)` on a multicolumn index) and estimates it from
    the array's length, where the subquery form let it scan a whole index instead."""
    sql, params = ids_match(connection.ops.quote_name(column), ids)
    return RawSQL(sql, params, output_field=BooleanField())
