"""Event leaves answered from the signal tally instead of the log.

The tally (`engagement.models.SignalTally`) holds one row per user and event name: the first
and last `occurred_at` and the total. A leaf's meaning is the log's: signals with that name
and `occurred_at <= now` (and `>= now - within`). For one tally row:

- `last_at <= now`: every signal is up to now; "in the window" is `last_at >= since`, the
  count is `total`.
- `first_at > now`: none is up to now; nothing happened, the count is 0.
- `first_at <= now < last_at` (a `now` in the past, or future-dated signals): the tally cannot
  tell, and that row reads the log for its user -- a rare second branch, through the
  (user, name, occurred_at) index.

A user without a row has no such signal at all. Leaves with `where` (the log's properties)
and counts with `within` (a count of part of the log) are not answered here. Every test is
a plain boolean over NOT NULL columns and EXISTS, never NULL, so negating one is exact.
"""

from dataclasses import dataclass

from django.db.models import Exists, F, OuterRef, Q

from engagement.models import Signal, SignalTally

from .comparisons import COMPARISONS, COMPLEMENT, HOLDS_FOR_ZERO, CappedCount
from .durations import parse_duration


@dataclass(frozen=True)
class RowTest:
    holds: Q  # a tally row on which the leaf holds for the row's user
    fails: Q  # a tally row on which it does not (the complement of `holds`)
    without_row: bool  # the leaf's answer for a user with no row (nothing happened, count 0)


def answerable(node: dict) -> bool:
    return "event" in node and not node.get("where") and not (node["check"] == "count" and node.get("within"))


def rows_of(name: str):
    """The tally row of the outer user for the event `name` (at most one)."""
    return SignalTally.objects.filter(user_id=OuterRef("pk"), name=name)


def condition(node: dict, evaluation) -> Q:
    """The leaf over users. Where a user without a row fails it: "a row on which it holds"
    (an EXISTS the database joins set-based, or in an OR probes by the (user_id, name) key);
    where such a user passes (absence, a count zero satisfies): "no row on which it fails"."""
    test = row_test(node, evaluation)
    rows = rows_of(node["event"])
    return ~Q(Exists(rows.filter(test.fails))) if test.without_row else Q(Exists(rows.filter(test.holds)))


def one_row_condition(nodes: list[dict], evaluation) -> Q:
    """Several leaves of one event name in one `all`, one of which needs a row: they all hold
    on that user's one row, so one EXISTS tests them together ("went dormant": the first
    signal is up to now and the last is before the window)."""
    tests = [row_test(node, evaluation).holds for node in nodes]
    return Q(Exists(rows_of(nodes[0]["event"]).filter(*tests)))


def row_test(node: dict, evaluation) -> RowTest:
    if node["check"] == "count":
        op, value = node["op"], node["value"]
        return RowTest(holds=_count_is(node, op, value, evaluation),
                       fails=_count_is(node, COMPLEMENT[op], value, evaluation),
                       without_row=HOLDS_FOR_ZERO[op](value))
    happened = _happened(node, evaluation)
    if node["check"] == "exists":
        return RowTest(holds=happened, fails=~happened, without_row=False)
    return RowTest(holds=~happened, fails=happened, without_row=True)


def _logged(node: dict, evaluation, since=None):
    """The log's signals of the tally row's user (the row is the outer query) for the leaf."""
    signals = Signal.objects.filter(user_id=OuterRef("user_id"), name=node["event"],
                                    occurred_at__lte=evaluation.now)
    return signals if since is None else signals.filter(occurred_at__gte=since)


def _happened(node: dict, evaluation) -> Q:
    """The row shows a signal up to now (and within the window).

    Ever: the first signal is up to now. In a window [since, now]: the last signal is at or
    after `since` (a range on the (name, last_at) index), and either it is up to now, or the
    first one is in the window, or -- first before the window, last after now -- the log says.
    """
    now = evaluation.now
    if not node.get("within"):
        return Q(first_at__lte=now)
    since = now - parse_duration(node["within"])
    undecided = Q(first_at__lt=since) & Q(Exists(_logged(node, evaluation, since)))
    return Q(last_at__gte=since) & (
        Q(last_at__lte=now) | (Q(first_at__lte=now) & (Q(first_at__gte=since) | undecided)))


def _count_is(node: dict, op: str, value: int, evaluation) -> Q:
    """The row's count of signals up to now satisfies `op value` (the three cases above; the
    undecided one counts at most `value + 1` of the log's rows, which compares alike)."""
    now, compare = evaluation.now, COMPARISONS[op]
    decided = Q(last_at__lte=now) & Q(compare(F("total"), value))
    logged = _logged(node, evaluation).order_by().values("user_id")[:value + 1]
    undecided = Q(first_at__lte=now, last_at__gt=now) & Q(compare(CappedCount(logged), value))
    if HOLDS_FOR_ZERO[op](value):
        return decided | Q(first_at__gt=now) | undecided
    return decided | undecided
