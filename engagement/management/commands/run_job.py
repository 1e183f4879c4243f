from engagement.cli import JobCommand


class Command(JobCommand):
    help = (
        "Run one scheduled job now, in this process, evaluated at --now: a manual job run of its "
        "own, even when the scheduler already ran that window. Exits non-zero when it failed."
    )

    def add_arguments(self, parser):
        parser.add_argument("kind", help="the schedule's kind, e.g. prune_job_runs")
        super().add_arguments(parser)

    def job_kind(self, options) -> str:
        return options["kind"]
