"""The 60-second tick: claim each schedule's due window and enqueue its run (docs/ARCHITECTURE.md §3).

For each schedule the tick takes the latest due window that has no successful
JobRun; older missed windows are recorded as skipped, never replayed in a
burst. It claims the window's row (`queued`, under a short lease) and, after
commit, enqueues `engagement.jobs.run_job_run(pk)` on the queue the schedule
names with the schedule's timeout; a worker then executes it
(engagement/job_runs.py). A window that succeeded, or whose run is queued or
running under a live lease, is left alone; a failed or lease-expired run is
enqueued again and resumes on the same row with its cursor. A second
scheduler therefore changes nothing. If Redis cannot take the job, the row
stays due (no lease) and the next tick enqueues it.

After the schedules, the tick calls the hooks in `PULSE_TICK_HOOKS` in order,
each as `hook(now)`; one failing is logged and the others still run.
"""

import logging
import uuid
from datetime import datetime, timedelta
from functools import partial

import django_rq
import redis
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from .job_runs import LEASE, JobResult, LeaseLost, execute_run, extend_lease, run_job_now
from .models import JobRun
from .redis_client import warn_unavailable
from .registry import entries
from .schedules import MAX_MISSED_WINDOWS, Schedule, get_schedule, schedules

__all__ = [
    "LEASE", "JobResult", "LeaseLost", "Schedule", "extend_lease", "get_schedule", "run_due_jobs",
    "run_job_now", "run_window", "schedules", "tick",
]
log = logging.getLogger("pulse.scheduler")
Status = JobRun.Status
SCHEDULED = JobRun.Trigger.SCHEDULE
# How long a queued run is trusted to be waiting in Redis before the tick looks again.
QUEUED_LEASE = timedelta(minutes=15)
WAITING = {JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED}
RESULT_TTL = 3600


def tick(now: datetime | None = None) -> dict:
    """The single rqcron entry point: heartbeat, drain, due schedules, then the tick hooks."""
    from .jobs import note_tick
    from .pipeline import has_pending
    from .wake import wake_drain

    now = now or timezone.now()
    note_tick(timezone.now())
    if has_pending():
        wake_drain()
    outcome = {kind: run.status for kind, run in run_due_jobs(now).items()}
    run_tick_hooks(now)
    return outcome


def run_due_jobs(now: datetime | None = None, *, kind: str | None = None,
                 inline: bool = False) -> dict[str, JobRun]:
    """The latest due window of every schedule (or of `kind`): kind → its JobRun.

    Runs are enqueued after commit, or executed in this process with `inline`.
    """
    now = now or timezone.now()
    chosen = [get_schedule(kind)] if kind else schedules()
    return {s.kind: run_window(s, s.latest_window(now), now, inline=inline) for s in chosen}


def run_window(schedule: Schedule, window: datetime, now: datetime, *, inline: bool = False) -> JobRun:
    """Claim one window and enqueue (or execute) its run, unless it needs nothing."""
    _record_skipped(schedule, window)
    run = _claim(schedule, window, now, inline=inline)
    if run is None:
        return JobRun.objects.get(kind=schedule.kind, window=window, trigger=SCHEDULED)
    if inline:
        return execute_run(run.pk)
    transaction.on_commit(partial(enqueue_run, run.pk, run.job_id, schedule))
    return run


def run_tick_hooks(now: datetime) -> None:
    try:
        hooks = entries("PULSE_TICK_HOOKS")
    except ImportError:
        log.error("event=tick_hook_failed hook=- stage=import", exc_info=True)
        return
    for path, hook in zip(getattr(settings, "PULSE_TICK_HOOKS", ()), hooks, strict=True):
        try:
            hook(now)
        except Exception:  # noqa: BLE001 - one hook failing must not stop the others
            log.error("event=tick_hook_failed hook=%s", path, exc_info=True)


def enqueue_run(run_pk: int, job_id: str, schedule: Schedule) -> bool:
    """Put the run's job on its queue; if Redis is unreachable, leave the run due for the next tick."""
    try:
        django_rq.get_queue(schedule.queue).enqueue(
            "engagement.jobs.run_job_run", run_pk, job_id=job_id, job_timeout=schedule.timeout,
            result_ttl=RESULT_TTL, description=f"{schedule.kind} job run {run_pk}",
        )
    except redis.RedisError as exc:
        warn_unavailable("job_enqueue", exc)
        JobRun.objects.filter(pk=run_pk, job_id=job_id, status=Status.QUEUED).update(
            lease_expires_at=None
        )
        return False
    log.info("event=job_enqueued kind=%s job_run=%d queue=%s timeout=%d", schedule.kind, run_pk,
             schedule.queue, schedule.timeout)
    return True


def _record_skipped(schedule: Schedule, window: datetime) -> None:
    """Missed windows since the last recorded one become `skipped` rows (at most 24)."""
    last = (
        JobRun.objects.filter(kind=schedule.kind, trigger=SCHEDULED, window__lt=window)
        .order_by("-window").first()
    )
    if last is None:
        return
    for moment in schedule.windows_between(last.window, window)[-MAX_MISSED_WINDOWS:]:
        try:
            with transaction.atomic():
                JobRun.objects.get_or_create(
                    kind=schedule.kind, window=moment, trigger=SCHEDULED,
                    defaults={"status": Status.SKIPPED, "actor": "scheduler"},
                )
        except IntegrityError:
            continue


def _claim(schedule: Schedule, window: datetime, now: datetime, *, inline: bool) -> JobRun | None:
    """Take the window's row as `queued`: new, failed, skipped, or with an expired lease."""
    wall = timezone.now()
    claim = {
        "status": Status.QUEUED, "as_of": now, "lease_expires_at": wall + QUEUED_LEASE,
        "queue": "" if inline else schedule.queue, "job_id": "" if inline else uuid.uuid4().hex,
        "finished_at": None,
    }
    try:
        with transaction.atomic():
            run, created = JobRun.objects.get_or_create(
                kind=schedule.kind, window=window, trigger=SCHEDULED,
                defaults={**claim, "actor": "scheduler"},
            )
    except IntegrityError:
        run, created = JobRun.objects.get(kind=schedule.kind, window=window, trigger=SCHEDULED), False
    if created:
        return run
    if run.status == Status.QUEUED and _still_waiting(run):
        JobRun.objects.filter(pk=run.pk, job_id=run.job_id, status=Status.QUEUED).update(
            lease_expires_at=wall + QUEUED_LEASE
        )
        return None
    expired = Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=wall)
    claimable = Q(status__in=[Status.FAILED, Status.SKIPPED]) | (
        Q(status__in=[Status.QUEUED, Status.RUNNING]) & expired
    )
    if not JobRun.objects.filter(pk=run.pk).filter(claimable).update(**claim):
        return None
    return JobRun.objects.get(pk=run.pk)


def _still_waiting(run: JobRun) -> bool:
    """A queued run whose lease ran out while its job still sits in the queue: do not enqueue twice."""
    if not run.job_id or run.queue not in settings.RQ_QUEUES or run.lease_expires_at is None:
        return False
    if run.lease_expires_at >= timezone.now():
        return False  # the conditional claim leaves it alone anyway
    try:
        job = Job.fetch(run.job_id, connection=django_rq.get_connection(run.queue))
        return job.get_status() in WAITING
    except NoSuchJobError:
        return False
    except redis.RedisError as exc:
        warn_unavailable("job_enqueue", exc)
        return False
