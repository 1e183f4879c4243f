from engagement.cli import JobCommand


class Command(JobCommand):
    help = (
        "Run the daily engagement job now (inactivity goodbyes, then goodbye, help and reminder "
        "timeouts), evaluated at --now: a manual run of its own, even when the scheduler already "
        "ran that day. Prints a one-line summary; exits non-zero when the run failed."
    )
    kind = "daily_engagement"
