from engagement.cli import JobCommand


class Command(JobCommand):
    help = (
        "Learn engagement-rate:<feature> per tenant from the $engage signals of the 30 days before --now. "
        "A manual job run of its own, even when the scheduler already ran that window; "
        "exits non-zero when it or one of its parts failed."
    )
    kind = "tune_engagement"
    fail_on_partial = True
