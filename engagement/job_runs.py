"""Executing one JobRun: start it under a lease, call its job, record the outcome.

A job function is called as `fn(run, now)` and returns a `JobResult`; it may
raise, which marks the run failed (the next tick resumes it on the same row,
with the `cursor` it saved). Long jobs call `extend_lease(run, cursor=...)`
between chunks. `attempts` is the fencing token: it grows each time a run is
started, and a worker writes to its run only while it is unchanged, so a
worker whose lease expired and whose run was taken over stops at its next
chunk (LeaseLost) and never overwrites the new owner's outcome.
"""

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import F, Q
from django.utils import timezone
from django.utils.module_loading import import_string

from .models import JobRun
from .schedules import get_schedule

log = logging.getLogger("pulse.scheduler")
Status = JobRun.Status
# How long a started run is trusted without news from its worker. A job whose chunks may
# take longer must extend it between them.
LEASE = timedelta(minutes=15)
MAX_ERRORS = 50


@dataclass
class JobResult:
    processed: int = 0
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0
    # Strings, or dicts for per-item failures ({"user_id", "check", "error"}); stored as JSON.
    errors: list = field(default_factory=list)
    cursor: dict | None = None
    duration_ms: int | None = None  # the job's own measure; the run records its wall time anyway


class LeaseLost(Exception):
    """This worker no longer owns the run (its lease expired and it was taken over)."""


def execute_run(run_pk: int, *, func=None) -> JobRun | None:
    """Start the run and execute it here; None when there is no such run.

    A run that is not startable (finished, or running under another worker's
    live lease) is returned untouched: a duplicate job is a no-op.
    """
    run = start_run(run_pk)
    if run is None:
        current = JobRun.objects.filter(pk=run_pk).first()
        log.info("event=job_not_started job_run=%d status=%s", run_pk,
                 current.status if current else "missing")
        return current
    return execute(run, func)


def start_run(run_pk: int) -> JobRun | None:
    """Take a queued run, or a running one whose lease expired, and hold it under a lease."""
    wall = timezone.now()
    startable = Q(status=Status.QUEUED) | Q(status=Status.RUNNING, lease_expires_at__lt=wall)
    started = JobRun.objects.filter(pk=run_pk).filter(startable).update(
        status=Status.RUNNING, attempts=F("attempts") + 1, started_at=wall,
        lease_expires_at=wall + LEASE, finished_at=None,
    )
    return JobRun.objects.get(pk=run_pk) if started else None


def run_job_now(kind: str, *, now: datetime, actor: str, func=None) -> JobRun:
    """A manual run: a new row each time, evaluated at `now` and executed in this process.

    Its window is the schedule's window at `now` (or `now` to the minute for a
    kind with no schedule, which then needs `func`); the scheduler's own run
    of that window is neither consulted nor changed.
    """
    if func is None:
        schedule = get_schedule(kind)
        window = schedule.latest_window(now)
    else:
        window = now.replace(second=0, microsecond=0)
    wall = timezone.now()
    run = JobRun.objects.create(
        kind=kind, window=window, trigger=JobRun.Trigger.MANUAL, actor=actor, as_of=now,
        status=Status.RUNNING, attempts=1, started_at=wall, lease_expires_at=wall + LEASE,
    )
    return execute(run, func)


def execute(run: JobRun, func=None) -> JobRun:
    """Call the job of a run this worker has started; record how it ended."""
    started = time.monotonic()
    try:
        func = func or import_string(get_schedule(run.kind).func)
        result = func(run, run.as_of or timezone.now())
    except LeaseLost:
        log.warning("event=job_lease_lost kind=%s job_run=%d attempt=%d", run.kind, run.pk,
                    run.attempts)
        return JobRun.objects.get(pk=run.pk)
    except Exception as exc:  # noqa: BLE001 - a failed job is recorded, not propagated
        log.error("event=job_failed kind=%s window=%s job_run=%d", run.kind,
                  run.window.isoformat(), run.pk, exc_info=True)
        return _finish(run, Status.FAILED, JobResult(errors=[f"{type(exc).__name__}: {exc}"]), started)
    status = Status.FAILED if result.failed and not result.succeeded else Status.SUCCEEDED
    return _finish(run, status, result, started)


def extend_lease(run: JobRun, *, cursor: dict | None = None) -> None:
    """Between chunks: push the lease forward and save the cursor, or raise LeaseLost."""
    if cursor is not None:
        run.cursor = cursor
    lease = timezone.now() + LEASE
    if not _owned(run).update(lease_expires_at=lease, cursor=run.cursor):
        raise LeaseLost(run.pk)
    run.lease_expires_at = lease


def _owned(run: JobRun):
    return JobRun.objects.filter(pk=run.pk, status=Status.RUNNING, attempts=run.attempts)


def _finish(run: JobRun, status: str, result: JobResult, started: float) -> JobRun:
    run.status = status
    run.finished_at = timezone.now()
    run.lease_expires_at = None
    run.duration_ms = int((time.monotonic() - started) * 1000)
    for name in ("processed", "succeeded", "failed", "skipped"):
        setattr(run, name, getattr(result, name))
    run.errors = result.errors[:MAX_ERRORS]
    if result.cursor is not None:
        run.cursor = result.cursor
    written = _owned(run).update(**{
        name: getattr(run, name) for name in (
            "status", "finished_at", "lease_expires_at", "duration_ms", "processed", "succeeded",
            "failed", "skipped", "errors", "cursor",
        )
    })
    if not written:
        log.warning("event=job_lease_lost kind=%s job_run=%d attempt=%d", run.kind, run.pk,
                    run.attempts)
        return JobRun.objects.get(pk=run.pk)
    log.info(
        "event=job_finished kind=%s window=%s job_run=%d trigger=%s status=%s processed=%d "
        "succeeded=%d failed=%d skipped=%d duration_ms=%d",
        run.kind, run.window.isoformat(), run.pk, run.trigger, status, run.processed,
        run.succeeded, run.failed, run.skipped, run.duration_ms,
    )
    return run
