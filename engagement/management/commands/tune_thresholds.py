from engagement.cli import JobCommand


class Command(JobCommand):
    help = (
        "Learn inactivity-threshold-days per tenant from its members' activity gaps, 90 days before --now. "
        "A manual job run of its own, even when the scheduler already ran that window; "
        "exits non-zero when it or one of its parts failed."
    )
    kind = "tune_thresholds"
    fail_on_partial = True
