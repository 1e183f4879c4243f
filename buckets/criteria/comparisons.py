"""Comparing counts: the operators of a `count` leaf, whether a count of zero satisfies one,
each one's complement, and a COUNT(*) capped at a number of rows."""

from django.db.models import IntegerField, Q, Subquery
from django.db.models.lookups import Exact, GreaterThan, GreaterThanOrEqual, LessThan, LessThanOrEqual

HOLDS_FOR_ZERO = {
    "eq": lambda v: v == 0, "neq": lambda v: v != 0, "gt": lambda v: False, "gte": lambda v: v <= 0,
    "lt": lambda v: v > 0, "lte": lambda v: True,
}
COMPARISONS = {
    "eq": Exact, "gt": GreaterThan, "gte": GreaterThanOrEqual, "lt": LessThan, "lte": LessThanOrEqual,
    "neq": lambda left, right: ~Q(Exact(left, right)),
}
COMPLEMENT = {"eq": "neq", "neq": "eq", "gt": "lte", "gte": "lt", "lt": "gte", "lte": "gt"}


class CappedCount(Subquery):
    """COUNT(*) of a (sliced) subquery's rows."""

    template = "(SELECT COUNT(*) FROM (%(subquery)s) AS capped)"
    output_field = IntegerField()
