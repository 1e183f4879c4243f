"""Small helpers shared by the management commands (which stay thin shells)."""

from datetime import datetime

from django.core.management.base import CommandError
from django.utils import timezone

from .validation import Invalid, timestamp


def add_now_argument(parser) -> None:
    parser.add_argument(
        "--now", help="run as if it were this ISO 8601 time (UTC when no offset); default: now"
    )


def parse_now(value: str | None) -> datetime:
    if not value:
        return timezone.now()
    return parse_time(value, "--now")


def parse_time(value: str, option: str) -> datetime:
    try:
        return timestamp(value, option)
    except Invalid as exc:
        raise CommandError(f"{option}: {exc.errors[0]['message']}") from None


MANUAL_SUFFIX = ":manual"


def run_job_by_hand(kind: str, now: datetime):
    """Run schedule `kind` by hand, evaluating at `now` even when the scheduler already ran
    that window: the run is recorded on its own JobRun row (kind `<kind>:manual`, window
    `now`); running the same `now` again re-runs on that row. Returns the finished JobRun.

    The one place the job commands go through, so it can follow the scheduler when manual
    runs become part of it.
    """
    from django.db.models import F

    from .models import JobRun
    from .scheduler import LEASE, _execute, get_schedule

    try:
        schedule = get_schedule(kind)
    except KeyError as exc:
        raise CommandError(exc.args[0]) from None
    wall = timezone.now()
    run, created = JobRun.objects.get_or_create(
        kind=f"{kind}{MANUAL_SUFFIX}", window=now,
        defaults={"status": JobRun.Status.RUNNING, "attempts": 1, "started_at": wall,
                  "lease_expires_at": wall + LEASE},
    )
    if not created:
        JobRun.objects.filter(pk=run.pk).update(
            status=JobRun.Status.RUNNING, attempts=F("attempts") + 1, started_at=wall,
            lease_expires_at=wall + LEASE, finished_at=None,
        )
        run.refresh_from_db()
    from django.utils.module_loading import import_string

    return _execute(run, import_string(schedule.func), now)


def finish_job_command(command, run) -> None:
    """The one-line summary of a job command; non-zero exit when the run or a part of it failed."""
    line = (
        f"{run.kind} now={run.window.isoformat()} status={run.status} processed={run.processed} "
        f"succeeded={run.succeeded} failed={run.failed} skipped={run.skipped} job_run=#{run.pk}"
    )
    if run.status == "failed" or run.failed:
        for error in run.errors[:10]:
            command.stderr.write(str(error))
        raise CommandError(line)
    command.stdout.write(line)
