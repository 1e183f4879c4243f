from django.core.management.base import BaseCommand, CommandError

from engagement.cli import add_now_argument, job_run_summary, parse_now
from engagement.scheduler import run_due_jobs


class Command(BaseCommand):
    help = (
        "Do what the scheduler tick does for the schedules: claim the latest due window of each "
        "(or only --kind) and enqueue its run on the schedule's queue, or with --inline run it "
        "here. Exits non-zero when a run failed or could not be enqueued."
    )

    def add_arguments(self, parser):
        add_now_argument(parser)
        parser.add_argument("--kind", help="only this schedule")
        parser.add_argument(
            "--inline", action="store_true",
            help="execute the runs in this process instead of enqueueing them for a worker",
        )

    def handle(self, *args, now=None, kind=None, inline=False, **options):
        try:
            runs = run_due_jobs(parse_now(now), kind=kind, inline=inline)
        except KeyError as exc:
            raise CommandError(exc.args[0]) from None
        for run in runs.values():
            run.refresh_from_db()
            self.stdout.write(job_run_summary(run))
        problems = [f"{name} failed" for name, run in runs.items() if run.status == "failed"]
        problems += [f"{name} not enqueued" for name, run in runs.items() if run.awaiting_enqueue]
        if problems:
            raise CommandError(", ".join(problems))
        verb = "ran" if inline else "handled"
        self.stdout.write(f"{verb} {len(runs)} schedule(s), none failed")
