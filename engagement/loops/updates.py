"""A conditional `UPDATE … WHERE … RETURNING` built by the ORM, on PostgreSQL and SQLite alike.

The loops move users with one statement per chunk whose WHERE repeats the
whole rule ("still active, still inactive, not opted out"), so a row another
transaction changed meanwhile is re-checked by the database and skipped, and
the rows it returns are exactly the ones that moved. Django builds the UPDATE
(vendor-correct datetimes, expressions, correlated subqueries); this asks it
for the returned columns, which both PostgreSQL and SQLite ≥ 3.35 give.

The WHERE must stay on the updated table (correlated `Exists`/`Subquery`, no
joins): with a join Django rewrites it to `pk IN (SELECT …)`, and the
database would no longer re-check the rule on the row it locks.
"""

from django.core.exceptions import EmptyResultSet
from django.db import transaction
from django.db.models import QuerySet, sql


def update_returning(queryset: QuerySet, values: dict, returning: tuple[str, ...]) -> list[tuple]:
    """Apply `values` (field name → value or expression) to the rows of `queryset`; one tuple
    of `returning` fields per updated row."""
    model = queryset.model
    meta = model._meta
    fields = [(meta.get_field(name), None, value) for name, value in values.items()]
    query = queryset.query.chain(sql.UpdateQuery)
    query.add_update_fields(fields)
    query.annotations = {}
    if query.count_active_tables() > 1:
        raise ValueError("a conditional update must not join: use correlated subqueries")
    returned = [meta.get_field(name) for name in returning]
    compiler = query.get_compiler(queryset.db)
    try:
        with transaction.mark_for_rollback_on_error(using=queryset.db):
            return compiler.execute_returning_sql(returned)
    except EmptyResultSet:  # `pk__in=[]` and the like: nothing to update, no statement sent
        return []
