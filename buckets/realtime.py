"""Real-time evaluation: the drain handler that keeps memberships seconds behind the signals.

For each batch (PULSE_SIGNAL_HANDLERS, after the others): the cached candidate
index names the buckets each signal can change (`candidates.py`); each
candidate bucket is evaluated once for the users whose signals touched it, in
dependency levels, so a bucket that names another through `in_bucket` sees that
bucket's joins of this very batch. The buckets of one level are evaluated
together (`evaluation.evaluate_many`): one savepoint, one match statement for
all of them, one statement per kind of write. Queries per batch: one version
read, then a fixed number per level, whatever the batch size or the number of
candidate buckets.

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
from .evaluation import Outcome, Task, evaluate_many
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
    for level in index.levels:
        tasks, checked = [], []
        for bucket_id in level:
            spec = index.buckets[bucket_id]
            stale = _stale_members(spec) if spec.reevaluate_members else []
            if bucket_id not in users and not stale:
                continue
            cause = Cause(MembershipSource.SIGNAL, ACTOR, live.get(bucket_id, set()))
            tasks.append(Task(spec, frozenset(users.get(bucket_id, set()) | set(stale)), cause))
            if spec.reevaluate_members and len(stale) < STALE_CHUNK:
                checked.append(spec.id)
        outcomes = _evaluate_level(tasks, context.now)
        if checked:
            Bucket.objects.filter(pk__in=checked).update(reevaluate_members=False)
            bump_version()
        for bucket_id, outcome in outcomes.items():
            for dependent in index.dependents.get(index.buckets[bucket_id].slug, ()):
                for transition in outcome.transitions:
                    users.setdefault(dependent, set()).add(transition["user_id"])
                    if transition["realtime"]:
                        live.setdefault(dependent, set()).add(transition["user_id"])


def _stale_members(spec) -> list[int]:
    stale = (BucketMembership.objects.filter(bucket_id=spec.id, status=ACTIVE)
             .exclude(criteria_fingerprint=spec.fingerprint).order_by("pk"))
    return list(stale.values_list("user_id", flat=True)[:STALE_CHUNK])


def _evaluate_level(tasks: list[Task], now) -> dict:
    """A level's buckets together in one savepoint. When that fails on a data error, each
    bucket again in its own (`_evaluate_one`), so one bucket's error stays its own."""
    if len(tasks) <= 1:
        return {task.spec.id: _evaluate_one(task, now) for task in tasks}
    try:
        with transaction.atomic():
            return evaluate_many(tasks, now=now)
    except Exception as exc:
        if is_transient(exc):
            raise
        return {task.spec.id: _evaluate_one(task, now) for task in tasks}


def _evaluate_one(task: Task, now) -> Outcome:
    """One bucket in its own savepoint: a bucket whose criteria cannot run (a source gone)
    records its error and the batch goes on; database trouble aborts the batch as usual."""
    try:
        with transaction.atomic():
            return evaluate_many([task], now=now).get(task.spec.id, Outcome())
    except Exception as exc:
        if is_transient(exc):
            raise
        spec = task.spec
        log.error("event=bucket_evaluation_failed bucket_id=%d error_type=%s", spec.id, type(exc).__name__)
        Bucket.objects.filter(pk=spec.id).update(last_error=f"{type(exc).__name__}: {exc}"[:2000])
        return Outcome()
