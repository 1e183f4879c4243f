from django.core.management.base import BaseCommand

from engagement.cli import add_now_argument, finish_job_command, parse_now, run_job_by_hand


class Command(BaseCommand):
    help = (
        "Learn inactivity-threshold-days per tenant from its members' activity gaps, 90 days before --now. "
        "Runs even when the scheduler already ran that window (its own job run); exits non-zero on failure."
    )

    def add_arguments(self, parser):
        add_now_argument(parser)

    def handle(self, *args, now=None, **options):
        finish_job_command(self, run_job_by_hand("tune_thresholds", parse_now(now)))
