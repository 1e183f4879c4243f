"""Joins and leaves, set-based: the one place memberships change.

`join` and `leave` change the membership rows of one bucket for many users;
`join_rows` / `leave_rows` do it for many buckets at once (real time batches
every candidate bucket of a drain batch) and `record` writes, in the same
transaction, one `BucketTransition` per change, one `$bucket.entered` /
`$bucket.left` system signal per transition, and dispatches the reactions of
the transitions that fire (`dispatch.py`): one statement each, whatever the
number of buckets. Every write is keyed, so running the same change twice
writes nothing the second time:

- a join inserts with `ON CONFLICT DO NOTHING`: the partial unique index on
  (bucket, user) WHERE status = 'active' makes two evaluations racing create
  one active row, and the loser writes no transition; a join that hits the
  (bucket, user, entry count) key instead (the user joined and left in between)
  reads the count again and retries;
- a leave is `UPDATE … WHERE status = 'active' RETURNING`, so only the
  evaluation that flipped the row writes the transition;
- transitions are unique per (bucket, user, kind, entry count), signals and
  messages carry keys derived from the transition.

`Cause` says who and what made the change and which users' changes are live
(history and replays write the same rows but fire nothing).
"""

import json
import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.db.models import Count, Max
from django.db.models.expressions import RawSQL

from engagement.bulk import insert_returning, update_returning
from engagement.ingest import SystemSignal, record_system_signals

from .candidates import BucketSpec
from .dispatch import dispatch, reactions_for
from .entry_limits import entry_fires
from .models import BucketMembership, BucketTransition, LeaveReason, MembershipSource

ENTERED, LEFT = "$bucket.entered", "$bucket.left"
ACTIVE = BucketMembership.Status.ACTIVE
QUIET_REASONS = (LeaveReason.DISABLED, LeaveReason.ERASED)  # leaves that never fire reactions
JOIN_ATTEMPTS = 3
log = logging.getLogger("pulse.buckets")


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
    return record(join_rows([(spec, cause, user_ids)], now=now), now=now)


def leave(spec: BucketSpec, user_ids: Sequence[int] | None, *, reason: str, cause: Cause,
          now: datetime) -> list[dict]:
    """End the users' active stays (all members when `user_ids` is None) with `reason`."""
    if user_ids is not None and not user_ids:
        return []
    flipped = _flip_to_left(spec.id, user_ids, reason, now)
    return record(_left_rows(spec, cause, flipped, reason, now), now=now)


def join_rows(groups: Sequence[tuple[BucketSpec, Cause, Sequence[int]]], *, now: datetime) -> list[dict]:
    """Join users to buckets, all buckets in one membership INSERT; returns the pending
    transitions (`record` writes them). The entry count is 1 + the stays already stored.

    The insert skips a row that hits any unique key: the active-row index (another
    evaluation joined the user first: no transition from this one) or the (bucket, user,
    entry count) key (another evaluation made the user join and leave since the count was
    read: the count is read again and the join retried)."""
    specs = {spec.id: (spec, cause) for spec, cause, ids in groups if ids}
    wanted = {(spec.id, uid) for spec, _, ids in groups for uid in ids}
    pending: list[dict] = []
    for _ in range(JOIN_ATTEMPTS):
        if not wanted:
            break
        prior = _prior_stays(wanted)
        rows = [
            {"bucket_id": b, "user_id": u, "status": ACTIVE, "entered_at": now, "left_at": None,
             "leave_reason": "", "entry_count": 1 + prior.get((b, u), (0, None))[0],
             "source": specs[b][1].source, "last_evaluated_at": now,
             "criteria_fingerprint": specs[b][0].fingerprint}
            for b, u in sorted(wanted)
        ]
        written = insert_returning(BucketMembership, rows, conflict_fields=(),
                                   returning=("id", "bucket", "user", "entry_count"))
        pending += [_entered_row(*specs[m["bucket_id"]], m, prior.get((m["bucket_id"], m["user_id"])), now)
                    for m in written]
        wanted -= {(m["bucket_id"], m["user_id"]) for m in written}
        wanted -= _active_pairs(wanted)
    if wanted:
        log.warning("event=bucket_join_contended pairs=%d", len(wanted))
    return pending


def _prior_stays(pairs: set[tuple[int, int]]) -> dict[tuple[int, int], tuple[int, datetime | None]]:
    """(stays, last left_at) of each (bucket, user) pair that has any: one query."""
    if not pairs:
        return {}
    rows = (BucketMembership.objects.filter(bucket_id__in={b for b, _ in pairs},
                                            user_id__in=id_set({u for _, u in pairs}))
            .values("bucket_id", "user_id").annotate(n=Count("id"), last_left=Max("left_at")).order_by())
    return {(r["bucket_id"], r["user_id"]): (r["n"], r["last_left"]) for r in rows
            if (r["bucket_id"], r["user_id"]) in pairs}


def _active_pairs(pairs: set[tuple[int, int]]) -> set[tuple[int, int]]:
    if not pairs:
        return set()
    rows = BucketMembership.objects.filter(status=ACTIVE, bucket_id__in={b for b, _ in pairs},
                                           user_id__in=id_set({u for _, u in pairs}))
    return {pair for pair in rows.values_list("bucket_id", "user_id") if pair in pairs}


def _entered_row(spec: BucketSpec, cause: Cause, membership: dict, prior, now: datetime) -> dict:
    last_left = prior[1] if prior else None
    fires = bool(reactions_for(spec, "enter", "")) and cause.live(membership["user_id"]) and entry_fires(
        spec.entry_limit, spec.entry_period, entry_count=membership["entry_count"], last_left_at=last_left,
        now=now)
    return _transition_row(spec, cause, membership, kind="entered", reason="", fires=fires, now=now)


def leave_rows(groups: Sequence[tuple[BucketSpec, Cause, Sequence[int]]], *, reason: str,
               now: datetime) -> list[dict]:
    """End these active stays (membership ids), all buckets in one UPDATE; returns the
    pending transitions of the rows this statement flipped."""
    specs = {spec.id: (spec, cause) for spec, cause, ids in groups if ids}
    flipped = _flip_ids([i for _, _, ids in groups for i in ids], reason, now)
    pending: list[dict] = []
    for bucket_id, (spec, cause) in specs.items():
        pending += _left_rows(spec, cause, [m for m in flipped if m["bucket_id"] == bucket_id], reason, now)
    return pending


def _left_rows(spec: BucketSpec, cause: Cause, flipped: list[dict], reason: str, now: datetime) -> list[dict]:
    reacts = reason not in QUIET_REASONS and bool(reactions_for(spec, "leave", reason))
    return [_transition_row(spec, cause, m, kind="left", reason=reason,
                            fires=reacts and cause.live(m["user_id"]), now=now) for m in flipped]


def _transition_row(spec, cause, membership, *, kind, reason, fires, now) -> dict:
    realtime = cause.live(membership["user_id"]) and reason != LeaveReason.ERASED
    return {"bucket_id": spec.id, "user_id": membership["user_id"], "membership_id": membership["id"],
            "kind": kind, "entry_count": membership["entry_count"], "reason": reason, "source": cause.source,
            "occurred_at": now, "realtime": realtime,
            "fires": fires, "dispatched_at": None, "dispatch_log": [], "_spec": spec, "_actor": cause.actor}


def _flip_to_left(bucket_id: int, user_ids, reason: str, now: datetime) -> list[dict]:
    """UPDATE … WHERE status = 'active' RETURNING: only the rows this statement flipped."""
    where, params = "bucket_id = %s", [bucket_id]
    if user_ids is not None:
        where, params = f"{where} AND user_id {_in_ids(user_ids)}", [*params, *_ids_params(user_ids)]
    return _flip(where, params, reason, now)


def _flip_ids(membership_ids: Sequence[int], reason: str, now: datetime) -> list[dict]:
    if not membership_ids:
        return []
    return _flip(f"id {_in_ids(membership_ids)}", _ids_params(membership_ids), reason, now)


def _flip(where: str, params: list, reason: str, now: datetime) -> list[dict]:
    table = connection.ops.quote_name(BucketMembership._meta.db_table)
    sql = (f"UPDATE {table} SET status = %s, left_at = %s, leave_reason = %s "
           f"WHERE status = %s AND {where} RETURNING id, bucket_id, user_id, entry_count")
    with connection.cursor() as cursor:
        cursor.execute(sql, ["left", connection.ops.adapt_datetimefield_value(now), reason, ACTIVE, *params])
        return [{"id": i, "bucket_id": b, "user_id": u, "entry_count": n} for i, b, u, n in cursor.fetchall()]


def _in_ids(ids) -> str:
    """`= ANY(%s::bigint[])` on PostgreSQL (one literal, see `id_set`), `IN (…)` on SQLite."""
    if connection.vendor == "postgresql":
        return "= ANY(%s::bigint[])"
    return f"IN ({', '.join(['%s'] * len(set(ids)))})"


def _ids_params(ids) -> list:
    ordered = sorted(set(ids))
    return [array_literal(ordered)] if connection.vendor == "postgresql" else ordered


def array_literal(ids: Collection[int]) -> str:
    """`{1,2,3}`: one text parameter. Django's psycopg cursor binds on the client, where a
    list parameter is quoted element by element in Python; a literal is quoted once."""
    return "{" + ",".join(str(int(i)) for i in sorted(ids)) + "}"


UNNEST = "SELECT unnest(%s::bigint[])"


def id_set(ids: Collection[int]):
    """The ids for an `__in` filter as ONE parameter, however many: on PostgreSQL an array
    literal unnested by the database, on SQLite a JSON array read by `json_each`
    (`pk__in=id_set(ids)`)."""
    if connection.vendor != "postgresql":
        return RawSQL("SELECT value FROM json_each(%s)", [json.dumps(sorted(set(ids)))])
    return RawSQL(UNNEST, [array_literal(ids)])


def record(pending: list[dict], *, now: datetime) -> list[dict]:
    """Write pending transitions (any buckets) in one INSERT, their `$bucket.*` signals in one
    more, and dispatch the reactions of those that fire. Returns the transitions written."""
    if not pending:
        return []
    specs = {row["bucket_id"]: row["_spec"] for row in pending}
    actors = {(row["bucket_id"], row["user_id"], row["kind"], row["entry_count"]): row["_actor"]
              for row in pending}
    rows = [{k: v for k, v in row.items() if not k.startswith("_")} for row in pending]
    written = insert_returning(
        BucketTransition, rows, conflict_fields=["bucket", "user", "kind", "entry_count"],
        returning=("id", "bucket", "user", "kind", "entry_count", "reason", "source", "fires", "realtime"),
    )
    for row in written:
        row["occurred_at"] = now
    record_system_signals([
        transition_signal(specs[row["bucket_id"]], row,
                          actor=actors[(row["bucket_id"], row["user_id"], row["kind"], row["entry_count"])])
        for row in written], now=now)
    for bucket_id, spec in specs.items():
        firing = [row for row in written if row["fires"] and row["bucket_id"] == bucket_id]
        if firing:
            dispatch(spec, firing, now=now)
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


def confirm(memberships: Sequence[tuple[int, str]], *, now: datetime) -> None:
    """Active members who still match, as (membership id, criteria fingerprint): evaluated now,
    under these criteria. One UPDATE for any number of buckets."""
    if memberships:
        update_returning(BucketMembership, [{"id": i, "criteria_fingerprint": fp} for i, fp in memberships],
                         common={"last_evaluated_at": now}, where=("status = %s", [ACTIVE]))


__all__ = ["ACTIVE", "Cause", "MembershipSource", "confirm", "join", "join_rows", "leave", "leave_rows",
           "record"]


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
