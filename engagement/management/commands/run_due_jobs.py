from django.core.management.base import BaseCommand, CommandError

from engagement.cli import add_now_argument, parse_now
from engagement.scheduler import get_schedule, run_due_jobs, run_window


class Command(BaseCommand):
    help = (
        "Run what the scheduler tick runs: the latest due window of every schedule "
        "(or only --kind). Exits non-zero when a run failed."
    )

    def add_arguments(self, parser):
        add_now_argument(parser)
        parser.add_argument("--kind", help="run only this schedule")

    def handle(self, *args, now=None, kind=None, **options):
        now = parse_now(now)
        if kind:
            try:
                schedule = get_schedule(kind)
            except KeyError as exc:
                raise CommandError(exc.args[0]) from None
            runs = {kind: run_window(schedule, schedule.latest_window(now), now)}
        else:
            runs = run_due_jobs(now)
        for name, run in runs.items():
            self.stdout.write(
                f"{name} window={run.window.isoformat()} status={run.status} attempts={run.attempts} "
                f"processed={run.processed} failed={run.failed}"
            )
        failed = [name for name, run in runs.items() if run.status == "failed"]
        if failed:
            raise CommandError(f"failed: {', '.join(failed)}")
        self.stdout.write(f"ran {len(runs)} schedule(s), none failed")
