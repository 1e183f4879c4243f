"""Scheduled jobs: the 60-second tick, schedules as UTC cron expressions, JobRun windows.

For each schedule the tick runs the latest due window that has no successful
JobRun; older missed windows are recorded as skipped, never replayed in a
burst. Starting a window that already succeeded is a no-op; a failed or
lease-expired run is resumed on the same row (its `cursor` keeps chunked
progress). A second scheduler therefore changes nothing.

A job function is called as `fn(run, now)` and returns a `JobResult`; it may
raise, which marks the run failed.
"""

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from croniter import croniter
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.module_loading import import_string

from .models import JobRun

log = logging.getLogger("pulse.scheduler")
Status = JobRun.Status
LEASE = timedelta(minutes=15)
MAX_SKIPPED_RECORDED = 24
LAST_TICK_KEY = "pulse:scheduler:last_tick"


@dataclass(frozen=True)
class Schedule:
    kind: str
    cron: str
    func: str

    def latest_window(self, now: datetime) -> datetime:
        """The most recent fire time at or before `now` (UTC)."""
        now = now.astimezone(UTC)
        if croniter.match(self.cron, now.replace(second=0, microsecond=0)):
            return now.replace(second=0, microsecond=0)
        return croniter(self.cron, now).get_prev(datetime).astimezone(UTC)

    def windows_between(self, after: datetime, until: datetime) -> list[datetime]:
        out, it = [], croniter(self.cron, after.astimezone(UTC))
        while len(out) <= MAX_SKIPPED_RECORDED:
            moment = it.get_next(datetime).astimezone(UTC)
            if moment >= until:
                break
            out.append(moment)
        return out


@dataclass
class JobResult:
    processed: int = 0
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)
    cursor: dict | None = None


def schedules() -> list[Schedule]:
    return [Schedule(*entry) for entry in settings.PULSE_SCHEDULES]


def get_schedule(kind: str) -> Schedule:
    for schedule in schedules():
        if schedule.kind == kind:
            return schedule
    raise KeyError(f"no schedule named {kind!r}; known: {', '.join(s.kind for s in schedules())}")


def tick(now: datetime | None = None) -> dict:
    """The single rqcron entry point: note the heartbeat, drain, run due jobs."""
    from .jobs import note_tick
    from .pipeline import has_pending
    from .wake import wake_drain

    now = now or timezone.now()
    note_tick(timezone.now())
    if has_pending():
        wake_drain()
    return {kind: run.status for kind, run in run_due_jobs(now).items()}


def run_due_jobs(now: datetime | None = None) -> dict[str, JobRun]:
    """Run the latest due window of every schedule; returns kind → its JobRun."""
    now = now or timezone.now()
    return {s.kind: run_window(s, s.latest_window(now), now) for s in schedules()}


def run_window(schedule: Schedule, window: datetime, now: datetime) -> JobRun:
    """Run one window unless it already succeeded or is running under a live lease."""
    _record_skipped(schedule, window)
    run = _claim(schedule.kind, window)
    if run is None:
        return JobRun.objects.get(kind=schedule.kind, window=window)
    return _execute(run, import_string(schedule.func), now)


def _record_skipped(schedule: Schedule, window: datetime) -> None:
    """Missed windows since the last recorded one become `skipped` rows (at most 24)."""
    last = JobRun.objects.filter(kind=schedule.kind, window__lt=window).order_by("-window").first()
    if last is None:
        return
    missed = schedule.windows_between(last.window, window)[-MAX_SKIPPED_RECORDED:]
    for moment in missed:
        try:
            with transaction.atomic():
                JobRun.objects.get_or_create(
                    kind=schedule.kind, window=moment, defaults={"status": Status.SKIPPED}
                )
        except IntegrityError:
            continue


def _claim(kind: str, window: datetime) -> JobRun | None:
    """Take the run for this window: new, failed, or a running one whose lease expired."""
    wall = timezone.now()
    lease = wall + LEASE
    try:
        with transaction.atomic():
            run, created = JobRun.objects.get_or_create(
                kind=kind,
                window=window,
                defaults={
                    "status": Status.RUNNING,
                    "attempts": 1,
                    "started_at": wall,
                    "lease_expires_at": lease,
                },
            )
    except IntegrityError:
        created = False
    if created:
        return run
    taken = JobRun.objects.filter(kind=kind, window=window).filter(
        Q(status__in=[Status.FAILED, Status.SKIPPED])
        | Q(status=Status.RUNNING, lease_expires_at__lt=wall)
    )
    if not taken.update(
        status=Status.RUNNING, attempts=F("attempts") + 1, started_at=wall, lease_expires_at=lease,
        finished_at=None,
    ):
        return None
    return JobRun.objects.get(kind=kind, window=window)


def _execute(run: JobRun, func, now: datetime) -> JobRun:
    started = time.monotonic()
    try:
        result = func(run, now)
    except Exception as exc:  # noqa: BLE001 - a failed job is recorded, not propagated
        log.exception("event=job_failed kind=%s window=%s job_run=%d", run.kind, run.window, run.pk)
        return _finish(run, Status.FAILED, JobResult(errors=[f"{type(exc).__name__}: {exc}"]),
                       started)
    status = Status.FAILED if result.failed and not result.succeeded else Status.SUCCEEDED
    return _finish(run, status, result, started)


def _finish(run: JobRun, status: str, result: JobResult, started: float) -> JobRun:
    run.status = status
    run.finished_at = timezone.now()
    run.lease_expires_at = None
    run.duration_ms = int((time.monotonic() - started) * 1000)
    for name in ("processed", "succeeded", "failed", "skipped"):
        setattr(run, name, getattr(result, name))
    run.errors = result.errors[:50]
    if result.cursor is not None:
        run.cursor = result.cursor
    run.save()
    log.info(
        "event=job_finished kind=%s window=%s job_run=%d status=%s processed=%d succeeded=%d "
        "failed=%d skipped=%d duration_ms=%d",
        run.kind, run.window.isoformat(), run.pk, status, run.processed, run.succeeded,
        run.failed, run.skipped, run.duration_ms,
    )
    return run


def extend_lease(run: JobRun) -> None:
    """Long chunked jobs call this between chunks, saving their cursor too."""
    JobRun.objects.filter(pk=run.pk).update(
        lease_expires_at=timezone.now() + LEASE, cursor=run.cursor
    )
