"""Joins and leaves, set-based: the one place memberships change.

`join` and `leave` change the membership rows of one bucket for many users
and, in the same transaction, write one `BucketTransition` per change, one
`$bucket.entered` / `$bucket.left` system signal per transition, and dispatch
the reactions of the transitions that fire (`dispatch.py`). Every write is
keyed, so running the same change twice writes nothing the second time:

- a join inserts with `ON CONFLICT (bucket, user) WHERE status = 'active' DO
  NOTHING`, so two evaluations racing create one active row and the loser
  writes no transition;
- a leave is `UPDATE … WHERE status = 'active' RETURNING`, so only the
  evaluation that flipped the row writes the transition;
- transitions are unique per (bucket, user, kind, entry count), signals and
  messages carry keys derived from the transition.

`Cause` says who and what made the change and which users' changes are live
(history and replays write the same rows but fire nothing).
"""

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.db.models import Count, Max

from engagement.bulk import insert_returning
from engagement.ingest import SystemSignal, record_system_signals

from .candidates import BucketSpec
from .dispatch import dispatch, reactions_for
from .entry_limits import entry_fires
from .models import BucketMembership, BucketTransition, LeaveReason, MembershipSource

ENTERED, LEFT = "$bucket.entered", "$bucket.left"
ACTIVE = BucketMembership.Status.ACTIVE
QUIET_REASONS = (LeaveReason.DISABLED, LeaveReason.ERASED)  # leaves that never fire reactions


@dataclass(frozen=True)
class Cause:
    """Why memberships change: the membership source, the actor, and the live users.

    `realtime_ids` None means every change is live; otherwise only those users' are.
    """

    source: str
    actor: str
    realtime_ids: Collection[int] | None = None

    def live(self, user_id: int) -> bool:
        return self.realtime_ids is None or user_id in self.realtime_ids


def join(spec: BucketSpec, user_ids: Sequence[int], *, cause: Cause, now: datetime) -> list[dict]:
    """Make the users active members; returns the transitions written (users already active: none)."""
    if not user_ids:
        return []
    prior = {
        row["user_id"]: row
        for row in BucketMembership.objects.filter(bucket_id=spec.id, user_id__in=list(user_ids))
        .values("user_id").annotate(n=Count("id"), last_left=Max("left_at"))
    }
    rows = [
        {"bucket_id": spec.id, "user_id": uid, "status": ACTIVE, "entered_at": now, "left_at": None,
         "leave_reason": "", "entry_count": 1 + (prior[uid]["n"] if uid in prior else 0),
         "source": cause.source, "last_evaluated_at": now, "criteria_fingerprint": spec.fingerprint}
        for uid in sorted(set(user_ids))
    ]
    written = insert_returning(
        BucketMembership, rows, conflict_fields=["bucket", "user"], conflict_where={"status": ACTIVE},
        returning=("id", "user", "entry_count"),
    )
    enter_reactions = bool(reactions_for(spec, "enter", ""))

    def fires(row) -> bool:
        last_left = prior.get(row["user_id"], {}).get("last_left")
        return enter_reactions and cause.live(row["user_id"]) and entry_fires(
            spec.entry_limit, spec.entry_period, entry_count=row["entry_count"], last_left_at=last_left,
            now=now)

    return _record(spec, written, kind="entered", reason="", cause=cause, now=now, fires=fires)


def leave(spec: BucketSpec, user_ids: Sequence[int] | None, *, reason: str, cause: Cause,
          now: datetime) -> list[dict]:
    """End the users' active stays (all members when `user_ids` is None) with `reason`."""
    if user_ids is not None and not user_ids:
        return []
    written = _flip_to_left(spec.id, user_ids, reason, now)
    leave_reactions = reason not in QUIET_REASONS and bool(reactions_for(spec, "leave", reason))

    def fires(row) -> bool:
        return leave_reactions and cause.live(row["user_id"])

    return _record(spec, written, kind="left", reason=reason, cause=cause, now=now, fires=fires)


def _flip_to_left(bucket_id: int, user_ids, reason: str, now: datetime) -> list[dict]:
    """UPDATE … WHERE status = 'active' RETURNING: only the rows this statement flipped."""
    table = connection.ops.quote_name(BucketMembership._meta.db_table)
    left_at = connection.ops.adapt_datetimefield_value(now)
    params: list = ["left", left_at, reason, bucket_id, ACTIVE]
    where_users = ""
    if user_ids is not None:
        ids = sorted(set(user_ids))
        if connection.vendor == "postgresql":
            where_users, params = " AND user_id = ANY(%s)", [*params, ids]
        else:
            where_users, params = f" AND user_id IN ({', '.join(['%s'] * len(ids))})", [*params, *ids]
    sql = (f"UPDATE {table} SET status = %s, left_at = %s, leave_reason = %s "
           f"WHERE bucket_id = %s AND status = %s{where_users} RETURNING id, user_id, entry_count")
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [{"id": i, "user_id": u, "entry_count": n} for i, u, n in cursor.fetchall()]


def _record(spec: BucketSpec, memberships: list[dict], *, kind: str, reason: str, cause: Cause,
            now: datetime, fires) -> list[dict]:
    """The transitions of these membership changes, their signals, and their reactions."""
    if not memberships:
        return []
    rows = [
        {"bucket_id": spec.id, "user_id": m["user_id"], "membership_id": m["id"], "kind": kind,
         "entry_count": m["entry_count"], "reason": reason, "source": cause.source, "occurred_at": now,
         "realtime": cause.live(m["user_id"]) and reason != LeaveReason.ERASED, "fires": fires(m),
         "dispatched_at": None, "dispatch_log": []}
        for m in memberships
    ]
    written = insert_returning(
        BucketTransition, rows, conflict_fields=["bucket", "user", "kind", "entry_count"],
        returning=("id", "user", "entry_count", "fires", "realtime"),
    )
    for row in written:
        row.update(bucket_id=spec.id, kind=kind, reason=reason, occurred_at=now, source=cause.source)
    record_system_signals([transition_signal(spec, row, actor=cause.actor) for row in written], now=now)
    dispatch(spec, [row for row in written if row["fires"]], now=now)
    return written


def transition_signal(spec: BucketSpec, transition: dict, *, actor: str) -> SystemSignal:
    """`$bucket.entered` / `$bucket.left`, keyed by the transition: other buckets chain on it."""
    properties = {"bucket": spec.slug, "entry_count": transition["entry_count"],
                  "source": transition["source"]}
    if transition["kind"] == "left":
        properties["reason"] = transition["reason"]
    return SystemSignal(
        transition["user_id"], ENTERED if transition["kind"] == "entered" else LEFT, actor,
        properties=properties, occurred_at=transition["occurred_at"],
        idempotency_key=f"bucket:transition:{transition['id']}", realtime=transition["realtime"],
    )


def confirm(spec: BucketSpec, user_ids: Collection[int], *, now: datetime) -> None:
    """Active members who still match: evaluated now, under the current criteria."""
    if user_ids:
        BucketMembership.objects.filter(bucket_id=spec.id, status=ACTIVE, user_id__in=list(user_ids)).update(
            last_evaluated_at=now, criteria_fingerprint=spec.fingerprint)


__all__ = ["ACTIVE", "Cause", "MembershipSource", "confirm", "join", "leave"]


def leave_everywhere(user_ids: Sequence[int], *, reason: str, cause: Cause, now: datetime) -> list[dict]:
    """Every active stay of these users, in every bucket, ends with `reason` (an erasure):
    one flip, one transition insert and one signal insert whatever the number of buckets.
    Such leaves never fire reactions."""
    from .candidates import BucketSpec
    from .models import Bucket

    if not user_ids:
        return []
    table = connection.ops.quote_name(BucketMembership._meta.db_table)
    ids = sorted(set(user_ids))
    marks = ", ".join(["%s"] * len(ids))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET status = %s, left_at = %s, leave_reason = %s "
            f"WHERE status = %s AND user_id IN ({marks}) RETURNING id, bucket_id, user_id, entry_count",
            ["left", connection.ops.adapt_datetimefield_value(now), reason, ACTIVE, *ids])
        flipped = cursor.fetchall()
    found = Bucket.objects.filter(pk__in={r[1] for r in flipped})
    buckets = {b.pk: BucketSpec.of(b, reactions=()) for b in found}
    written = []
    for bucket_id, spec in buckets.items():
        memberships = [{"id": i, "user_id": u, "entry_count": n} for i, b, u, n in flipped if b == bucket_id]
        written += _rows_only(spec, memberships, kind="left", reason=reason, cause=cause, now=now)
    rows = insert_returning(
        BucketTransition, written, conflict_fields=["bucket", "user", "kind", "entry_count"],
        returning=("id", "bucket", "user", "entry_count", "realtime"),
    )
    for row in rows:
        row.update(kind="left", reason=reason, occurred_at=now, source=cause.source)
    record_system_signals([transition_signal(buckets[row["bucket_id"]], row, actor=cause.actor)
                           for row in rows], now=now)
    return rows


def _rows_only(spec, memberships, *, kind, reason, cause, now) -> list[dict]:
    return [
        {"bucket_id": spec.id, "user_id": m["user_id"], "membership_id": m["id"], "kind": kind,
         "entry_count": m["entry_count"], "reason": reason, "source": cause.source, "occurred_at": now,
         "realtime": False, "fires": False, "dispatched_at": None, "dispatch_log": []}
        for m in memberships
    ]
