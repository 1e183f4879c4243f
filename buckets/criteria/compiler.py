"""The one criteria compiler: criteria in, a queryset of the live users who match at `now`.

Every bucket path (preview, real time, sweeps, backfill, audiences) goes
through `matching_users`. Composites combine the leaves' `Q` objects; the
leaves are in `leaves.py`. Nothing here loads users into Python.
"""

from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import reduce
from operator import and_, or_

from django.db.models import Q

from engagement.models import EndUser

from . import sources, tallied
from .leaves import LEAVES


class InvalidCriteria(ValueError):
    """The criteria do not have the shape validation guarantees."""


def stored_bucket(slug: str):
    """(kind, criteria) of the bucket with this slug, or None."""
    from buckets.models import Bucket

    return Bucket.objects.filter(slug=slug).values_list("kind", "criteria").first()


@dataclass(frozen=True)
class Evaluation:
    now: datetime
    among: object = None
    bucket: object = stored_bucket
    trail: tuple = ()
    features: set = field(default_factory=set)
    negated: bool = False  # under a `not`: the SQL must never be NULL (NOT NULL is NULL, not true)
    # Under an `any`: the SQL sits in an OR, where the database cannot turn a subquery into
    # a join, so set-based subqueries would be evaluated as a hashed or a per-row subplan.
    disjunct: bool = False

    def inside(self, slug: str) -> "Evaluation":
        return replace(self, trail=(*self.trail, slug))


def live_users(among=None):
    users = EndUser.objects.filter(deleted_at__isnull=True, merged_into__isnull=True)
    return users if among is None else users.filter(pk__in=among)


def matching_users(criteria: dict, now: datetime, among=None, *, bucket=stored_bucket):
    """The live users who match `criteria` at `now`, optionally among the user ids `among`.

    Expired profile features the criteria read are refreshed first, set-based,
    for the same users. The answer is a lazy queryset of `EndUser`.
    """
    evaluation = Evaluation(now=now, among=among, bucket=bucket)
    condition = compile_condition(criteria, evaluation)
    users = live_users(among)
    sources.refresh_profiles(evaluation.features, users, now)
    return users.filter(condition)


def compile_condition(node: dict, evaluation: Evaluation) -> Q:
    if not isinstance(node, dict):
        raise InvalidCriteria("a condition must be an object")
    if "all" in node or "any" in node:
        children = node.get("all", node.get("any"))
        if not isinstance(children, list) or not children:
            raise InvalidCriteria("a composite needs at least one condition")
        if "all" in node:
            return reduce(and_, _conjuncts(children, evaluation))
        inner = replace(evaluation, disjunct=True)
        return reduce(or_, [compile_condition(child, inner) for child in children])
    if "not" in node:
        return ~compile_condition(node["not"], replace(evaluation, negated=True))
    for kind, compile_leaf in LEAVES.items():
        if kind in node:
            return compile_leaf(node, evaluation)
    raise InvalidCriteria("a condition names none of the known kinds")


def _conjuncts(children: list, evaluation: Evaluation) -> list[Q]:
    """The parts of an `all`. Tally-answered event leaves of one name, one of which needs the
    user to have a row, become one test of that row (tallied.one_row_condition); the rest
    compile one by one, in their order."""
    by_name: dict[str, list[dict]] = {}
    for child in children:
        if isinstance(child, dict) and tallied.answerable(child):
            by_name.setdefault(child["event"], []).append(child)
    joined = {name: nodes for name, nodes in by_name.items() if len(nodes) > 1 and any(
        not tallied.row_test(node, evaluation).without_row for node in nodes)}
    parts, done = [], set()
    for child in children:
        name = child.get("event") if isinstance(child, dict) and tallied.answerable(child) else None
        if name in joined:
            if name not in done:
                parts.append(tallied.one_row_condition(joined[name], evaluation))
                done.add(name)
            continue
        parts.append(compile_condition(child, evaluation))
    return parts
