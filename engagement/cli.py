"""Small helpers shared by the management commands (which stay thin shells)."""

from datetime import datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from .validation import Invalid, timestamp


def add_now_argument(parser) -> None:
    parser.add_argument(
        "--now",
        help="run as if it were this ISO 8601 time (UTC when no offset; a bare date is its midnight UTC); "
        "default: now",
    )


def parse_now(value: str | None) -> datetime:
    if not value:
        return timezone.now()
    return parse_time(value, "--now")


def parse_time(value: str, option: str) -> datetime:
    try:
        return timestamp(value, option, date_is_midnight=True)
    except Invalid as exc:
        raise CommandError(f"{option}: {exc.errors[0]['message']}") from None


def job_run_summary(run) -> str:
    """One line about a job run, for a command's output."""
    line = (
        f"{run.kind} window={run.window.isoformat()} trigger={run.trigger} status={run.status} "
        f"attempts={run.attempts} processed={run.processed} succeeded={run.succeeded} "
        f"failed={run.failed} skipped={run.skipped}"
    )
    if run.queue:
        line += f" queue={run.queue}"
    if run.awaiting_enqueue:
        line += " enqueued=no (Redis unavailable; the next tick enqueues it)"
    if run.duration_ms is not None:
        line += f" duration_ms={run.duration_ms}"
    return line


class JobCommand(BaseCommand):
    """A job's management command: one manual run evaluated at `--now`, executed in this process.

    Set `kind` (a schedule's kind). Each invocation is its own JobRun
    (trigger=manual), even for a window the scheduler already ran: jobs are
    idempotent, so an operator may always re-run one. It prints a one-line
    summary and exits non-zero when the run failed.
    """

    kind: str = ""
    actor = "cli"
    # Also exit non-zero when the run succeeded but some of its parts (tenants, users) failed.
    fail_on_partial = False

    def add_arguments(self, parser):
        add_now_argument(parser)

    def job_kind(self, options) -> str:
        return self.kind

    def handle(self, *args, now=None, **options):
        from .job_runs import run_job_now

        kind, when = self.job_kind(options), parse_now(now)
        try:
            run = run_job_now(kind, now=when, actor=self.actor)
        except KeyError as exc:
            raise CommandError(exc.args[0]) from None
        self.stdout.write(job_run_summary(run))
        if run.status == "failed" or (self.fail_on_partial and run.failed):
            errors = "; ".join(map(error_text, run.errors[:3]))
            raise CommandError(f"{kind} failed: {errors or 'see the job run'}")


def error_text(error) -> str:
    """A stored job error: a string, or a per-item dict such as {"user_id", "check", "error"}."""
    if isinstance(error, dict):
        return " ".join(f"{key}={value}" for key, value in error.items())
    return str(error)
