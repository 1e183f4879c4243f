from engagement.cli import JobCommand


class Command(JobCommand):
    help = (
        "Delete item engagement idle over 90 days with a score below 0.01 at --now (the weekly job). "
        "A manual job run of its own, even when the scheduler already ran that window; "
        "exits non-zero when it or one of its parts failed."
    )
    kind = "item_cleanup"
    fail_on_partial = True
