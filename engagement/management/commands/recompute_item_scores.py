from engagement.cli import JobCommand


class Command(JobCommand):
    help = (
        "Store every item engagement score as of --now (what the daily job does). "
        "A manual job run of its own, even when the scheduler already ran that window; "
        "exits non-zero when it or one of its parts failed."
    )
    kind = "item_scores"
    fail_on_partial = True
