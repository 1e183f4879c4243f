"""Real-time evaluation: the drain handler that keeps memberships seconds behind the signals.

For each batch (PULSE_SIGNAL_HANDLERS, after the others): the cached candidate
index names the buckets each signal can change (`candidates.py`); each
candidate bucket is evaluated once for the users whose signals touched it, in
dependency order, so a bucket that names another through `in_bucket` sees that
bucket's joins of this very batch. Queries per batch: one version read, then
a fixed number per candidate bucket, whatever the batch size.

A user's change is live when one of its signals that touched the bucket may
act (`context.may_act`: not history, not a replay); only live changes fire
reactions. After a criteria change, each evaluation of the bucket also
re-checks up to `STALE_CHUNK` members evaluated under the old criteria (not
live: a definition change is not the user doing anything), until none is left.
"""

import logging

from django.db import transaction

from engagement.db_errors import is_transient

from .candidates import candidate_index, touched_buckets
from .evaluation import evaluate
from .index_version import bump_version
from .memberships import ACTIVE, Cause
from .models import Bucket, BucketMembership, MembershipSource

log = logging.getLogger("pulse.buckets")
STALE_CHUNK = 500
ACTOR = "job:buckets_realtime"


def evaluate_buckets(signals, context) -> None:
    """PULSE_SIGNAL_HANDLERS entry."""
    index = candidate_index()
    if not index.buckets:
        return
    users: dict[int, set[int]] = {}
    live: dict[int, set[int]] = {}
    for signal in signals:
        for bucket_id in touched_buckets(signal, index):
            users.setdefault(bucket_id, set()).add(signal.user_id)
            if context.may_act(signal):
                live.setdefault(bucket_id, set()).add(signal.user_id)
    for bucket_id in index.order:
        spec = index.buckets[bucket_id]
        stale = _stale_members(spec) if spec.reevaluate_members else []
        if bucket_id not in users and not stale:
            continue
        cause = Cause(MembershipSource.SIGNAL, ACTOR, live.get(bucket_id, set()))
        outcome = _evaluate_one(spec, users.get(bucket_id, set()) | set(stale), cause, context.now)
        if spec.reevaluate_members and len(stale) < STALE_CHUNK:
            Bucket.objects.filter(pk=spec.id).update(reevaluate_members=False)
            bump_version()
        for dependent in index.dependents.get(spec.slug, ()):
            for transition in outcome.transitions:
                users.setdefault(dependent, set()).add(transition["user_id"])
                if transition["realtime"]:
                    live.setdefault(dependent, set()).add(transition["user_id"])


def _stale_members(spec) -> list[int]:
    stale = (BucketMembership.objects.filter(bucket_id=spec.id, status=ACTIVE)
             .exclude(criteria_fingerprint=spec.fingerprint).order_by("pk"))
    return list(stale.values_list("user_id", flat=True)[:STALE_CHUNK])


def _evaluate_one(spec, user_ids, cause, now):
    """One bucket in its own savepoint: a bucket whose criteria cannot run (a source gone)
    records its error and the batch goes on; database trouble aborts the batch as usual."""
    from .evaluation import Outcome

    try:
        with transaction.atomic():
            return evaluate(spec, user_ids, cause=cause, now=now)
    except Exception as exc:
        if is_transient(exc):
            raise
        log.error("event=bucket_evaluation_failed bucket_id=%d error_type=%s", spec.id, type(exc).__name__)
        Bucket.objects.filter(pk=spec.id).update(last_error=f"{type(exc).__name__}: {exc}"[:2000])
        return Outcome()
