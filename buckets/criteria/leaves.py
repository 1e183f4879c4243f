"""The leaf registry: each kind of leaf condition and the function that compiles it to SQL.

A compile function takes the leaf and the `Evaluation` and returns a `Q` over
end users. Leaves read through Django expressions and correlated subqueries
only; none loads rows into Python. The `lifecycle` and `profile` leaves read
the models named in `PULSE_BUCKET_SOURCES` (see `sources.py`).
"""

from django.db.models import Count, Exists, F, OuterRef, Q, Value
from django.db.models.functions import StrIndex

from engagement.models import Membership, Signal

from . import sources, tallied
from .comparisons import COMPARISONS, HOLDS_FOR_ZERO, CappedCount
from .durations import parse_duration
from .json_conditions import JsonCondition, json_kind

LOOKUPS = {"eq": "exact", "gt": "gt", "gte": "gte", "lt": "lt", "lte": "lte"}


class CriteriaUnavailable(LookupError):
    """A leaf needs a source (lifecycle, profiles) this deployment does not have."""


def path_of(dotted: str) -> tuple[str, ...]:
    return tuple(dotted.split("."))


def property_condition(column: str, condition: dict, *, nullable: bool) -> Q:
    """A property condition (`property`, `op`, `value`) on the JSON column `column`;
    `nullable` only where no negation wraps it (see `JsonCondition`)."""
    return Q(JsonCondition(F(column), path_of(condition["property"]), condition["op"],
                           condition.get("value"), nullable=nullable))


def compile_property(node: dict, evaluation) -> Q:
    return property_condition("properties", node, nullable=not evaluation.negated)


def _signals(node: dict, evaluation):
    """The signals an event leaf looks at: its name, up to `now`, within its window, `where`."""
    signals = Signal.objects.filter(name=node["event"], occurred_at__lte=evaluation.now)
    if node.get("within"):
        signals = signals.filter(occurred_at__gte=evaluation.now - parse_duration(node["within"]))
    # A `where` filters rows inside the subquery; a negation wraps only its EXISTS or count.
    for condition in node.get("where", ()):
        signals = signals.filter(property_condition("properties", condition, nullable=True))
    return signals


def compile_event(node: dict, evaluation) -> Q:
    """An event leaf: from the signal tally where it answers exactly (tallied.py), else from
    the log (a `where`, or a count within a window)."""
    if tallied.answerable(node):
        return tallied.condition(node, evaluation)
    signals = _signals(node, evaluation)
    if node["check"] in ("exists", "not_exists"):
        found = Q(Exists(signals.filter(user_id=OuterRef("pk"))))
        return found if node["check"] == "exists" else ~found
    return _count(signals, node["op"], node["value"], evaluation)


def _count(signals, op: str, value: int, evaluation) -> Q:
    """Users whose number of matching signals satisfies `op value`.

    Where the leaf stands on its own in an `all` (no `not`, no `any` above it) and a count
    of 0 fails it, it is "among the users of a GROUP BY … HAVING", which the database joins
    set-based. Anywhere else (an OR, a negation, or a comparison 0 satisfies, where users
    without signals must match too) it is a per-user count capped at `value + 1` rows: a
    correlated read of at most that many entries of the (user, name, occurred_at) index,
    never NULL, whose comparison with `value` is the same as the full count's.
    """
    if HOLDS_FOR_ZERO[op](value) or evaluation.negated or evaluation.disjunct:
        rows = signals.filter(user_id=OuterRef("pk")).order_by().values("user_id")[:value + 1]
        return Q(COMPARISONS[op](CappedCount(rows), value))
    if evaluation.among is not None:
        signals = signals.filter(user_id__in=evaluation.among)
    grouped = signals.order_by().values("user_id").annotate(n=Count("id"))
    return Q(pk__in=grouped.filter(**{f"n__{LOOKUPS[op]}": value}).values("user_id"))


def compile_tenant(node: dict, evaluation) -> Q:
    return Q(Exists(Membership.objects.filter(user_id=OuterRef("pk"), tenant__key=node["tenant"])))


def compile_lifecycle(node: dict, evaluation) -> Q:
    model = sources.lifecycle_model()
    if model is None:
        raise CriteriaUnavailable(sources.UNAVAILABLE["lifecycle"])
    states = node["lifecycle"] if isinstance(node["lifecycle"], list) else [node["lifecycle"]]
    return Q(Exists(model.objects.filter(user_id=OuterRef("pk"), state__in=states)))


def compile_profile(node: dict, evaluation) -> Q:
    """A stored feature value: numbers in `value`, categories in `value_text`; a missing row
    or a row holding neither is a missing value, which only `neq` and `not_exists` match."""
    model = sources.profile_model()
    if model is None:
        raise CriteriaUnavailable(sources.UNAVAILABLE["profile"])
    evaluation.features.add(node["profile"])
    rows = model.objects.filter(user_id=OuterRef("pk"), name=node["profile"])
    op, value = node["op"], node.get("value")
    if op in ("neq", "not_exists"):
        return ~Q(Exists(_profile_rows(rows, "eq" if op == "neq" else "exists", value)))
    return Q(Exists(_profile_rows(rows, op, value)))


def _profile_rows(rows, op: str, value):
    if op == "exists":
        return rows.filter(Q(value__isnull=False) | Q(value_text__isnull=False))
    if op == "contains":
        return rows.annotate(_at=StrIndex("value_text", Value(value))).filter(_at__gt=0)
    if op == "in":
        numbers = [v for v in value if json_kind(v) == "number"]
        texts = [v for v in value if json_kind(v) == "string"]
        return rows.filter(Q(value__in=numbers) | Q(value_text__in=texts))
    column = "value" if json_kind(value) == "number" else "value_text"
    return rows.filter(**{f"{column}__{LOOKUPS[op]}": value})


def compile_in_bucket(node: dict, evaluation) -> Q:
    """An active membership of the named bucket (dynamic or manual).

    Memberships, not the other bucket's criteria inlined: a dynamic bucket's
    members are its criteria's answer as evaluated (real time, sweeps), a manual
    one's are hand-picked, and every change of them is a `$bucket.entered` /
    `$bucket.left` signal, which is how the buckets naming it are re-evaluated.
    """
    from buckets.models import BucketMembership

    slug = node["in_bucket"]
    if slug in evaluation.trail:
        raise ValueError(f"bucket criteria form a cycle through {slug!r}")
    return Q(Exists(BucketMembership.objects.filter(
        user_id=OuterRef("pk"), bucket__slug=slug, bucket__enabled=True, status="active")))


LEAVES = {
    "event": compile_event,
    "property": compile_property,
    "profile": compile_profile,
    "lifecycle": compile_lifecycle,
    "tenant": compile_tenant,
    "in_bucket": compile_in_bucket,
}
