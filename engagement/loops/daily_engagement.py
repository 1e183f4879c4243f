"""The daily engagement job (06:00 UTC): inactivity, then the three timeouts.

1. `inactivity_14d`: active users past their threshold (thresholds.py) get the
   goodbye; users it must not reach (skips.py) are counted as skipped and left
   untouched;
2. `goodbye_timeout`, 3. `help_timeout`, 4. `reminder_due`: → dormant, silently.

Set-based: each check walks the users of its source state in keyset chunks of
`PULSE_LIFECYCLE_CHUNK_SIZE` ids (one index-only query for the chunk's upper
bound), and moves a chunk with `transition_many` — one conditional UPDATE …
RETURNING, then the transitions, system signals and messages of exactly the
returned users, committed together. A chunk that fails is re-run one user at
a time, so one bad user is recorded as failed and every other still moves; a
transient database error fails the run instead (the scheduler resumes it from
the saved cursor). Re-running at the same `now` finds nobody due and queues
nothing: the UPDATE is the guard, and the goodbye's key is
`<user id>:goodbye_sent:<UTC date>` besides.
"""

import logging
import time
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from ..db_errors import is_transient
from ..job_runs import JobResult, extend_lease
from ..models import JobRun, LifecycleState
from .lifecycle import transition_many, trigger_named, valid_rows
from .skips import skipped

log = logging.getLogger("pulse.lifecycle")
S = LifecycleState.State
KIND = "daily_engagement"
ACTOR = f"job:{KIND}"
DEFAULT_CHUNK = 5000
MAX_ERROR_LENGTH = 500


@dataclass(frozen=True)
class Check:
    trigger: str
    source: str
    skips: bool = False  # the check queues a message: leave users it must not reach alone


CHECKS = (
    Check("inactivity_14d", S.ACTIVE, skips=True),
    Check("goodbye_timeout", S.GOODBYE_SENT),
    Check("help_timeout", S.HELP_FLOW),
    Check("reminder_due", S.REMIND_LATER),
)


def daily_engagement_job(run: JobRun, now: datetime) -> JobResult:
    """The scheduled job's entry point (PULSE_SCHEDULES, kind `daily_engagement`)."""
    return run_daily_engagement(now, run=run)


def run_daily_engagement(now: datetime | None = None, *, run: JobRun | None = None) -> JobResult:
    now = now or timezone.now()
    started = time.monotonic()
    run_id = run.pk if run else "-"
    log.info("event=daily_engagement_started job_run=%s now=%s", run_id, now.isoformat())
    result = JobResult(errors=[])
    cursor = dict(run.cursor or {}) if run else {}
    for check in _remaining(cursor):
        after = cursor.get("after", 0) if check.trigger == cursor.get("check") else 0
        _run_check(check, now, run, result, after)
    result.processed = result.succeeded + result.failed + result.skipped
    result.duration_ms = int((time.monotonic() - started) * 1000)
    result.cursor = {}
    log.info("event=daily_engagement_finished job_run=%s processed=%d succeeded=%d failed=%d "
             "skipped=%d duration_ms=%d", run_id, result.processed, result.succeeded, result.failed,
             result.skipped, result.duration_ms)
    return result


def _remaining(cursor: dict) -> tuple[Check, ...]:
    """A resumed run (its cursor saved between chunks) starts at the check it was in."""
    names = [c.trigger for c in CHECKS]
    return CHECKS[names.index(cursor["check"]):] if cursor.get("check") in names else CHECKS


def chunk_size() -> int:
    return int(getattr(settings, "PULSE_LIFECYCLE_CHUNK_SIZE", DEFAULT_CHUNK))


def _run_check(check: Check, now: datetime, run: JobRun | None, result: JobResult, after: int) -> None:
    size = chunk_size()
    while True:
        bound = _chunk_bound(check.source, after, size)
        where = Q(user_id__gt=after) if bound is None else Q(user_id__gt=after, user_id__lte=bound)
        _run_chunk(check, where, now, run, result)
        if bound is None:
            return
        after = bound
        if run is not None:
            extend_lease(run, cursor={"check": check.trigger, "after": after})


def _chunk_bound(state: str, after: int, size: int) -> int | None:
    """The id of the `size`-th user in `state` after `after`, or None when fewer are left."""
    ids = (LifecycleState.objects.filter(state=state, user_id__gt=after).order_by("user_id")
           .values_list("user_id", flat=True)[size - 1 : size])
    return next(iter(ids), None)


def _due(check: Check, now: datetime, where: Q):
    return valid_rows(trigger_named(check.trigger), check.source, now).filter(where)


def _move(check: Check, now: datetime, where: Q, run: JobRun | None) -> tuple[int, int]:
    """(moved, skipped) for the users of `where`, in one transaction."""
    with transaction.atomic():
        moved = transition_many(check.trigger, now=now, actor=ACTOR, job_run=run, sources=[check.source],
                                where=(where & ~Q(skipped())) if check.skips else where)
        # Counted after the move: whoever is still due was left alone by the skip rule. Cheaper
        # than counting the skip rule itself, whose subqueries the UPDATE has just evaluated.
        skips = _due(check, now, where).count() if check.skips else 0
    return len(moved.user_ids), skips


def _run_chunk(check: Check, where: Q, now: datetime, run: JobRun | None, result: JobResult) -> None:
    try:
        moved, skips = _move(check, now, where, run)
    except Exception as exc:
        if is_transient(exc):
            raise
        log.warning("event=daily_engagement_chunk_failed check=%s error_type=%s", check.trigger,
                    type(exc).__name__)
        _one_by_one(check, where, now, run, result)
        return
    result.succeeded += moved
    result.skipped += skips


def _one_by_one(check: Check, where: Q, now: datetime, run: JobRun | None, result: JobResult) -> None:
    """After a chunk failed: each due user in its own transaction, failures recorded."""
    candidates = list(_due(check, now, where).order_by("user_id").values_list("user_id", flat=True))
    for user_id in candidates:
        try:
            moved, skips = _move(check, now, Q(user_id=user_id), run)
        except Exception as exc:
            if is_transient(exc):
                raise
            result.failed += 1
            result.errors.append({"user_id": user_id, "check": check.trigger,
                                  "error": f"{type(exc).__name__}: {exc}"[:MAX_ERROR_LENGTH]})
            log.error("event=daily_engagement_user_failed check=%s user_id=%d error_type=%s",
                      check.trigger, user_id, type(exc).__name__)
            continue
        result.succeeded += moved
        result.skipped += skips
