"""One pass over the last 30 days of signals for every signal-based SQL form (tips, activity).

The set-based rebuild used to read the window twice, once per group, and convert
every row to local time twice. This shared relation reads it once per range of
users and answers, per user with signals in the window, everything both groups'
SQL forms need:

    user_id, served, feedback, completed, dismissed, dwell_sum, dwell_n,
    busiest_hour, sent, active_days, latest_active_at

It is grouped by user only (100,000 rows for 100,000 users, where the per-(user,
hour) and per-(user, day) aggregates it replaces grouped millions): each row is
converted to local time once (LocalHourNumber: whole local hours since 1970,
so the hour of day and the local day both follow), the hour histogram of feedback
is 24 filtered counts, and the local days with activity are bits of one integer
(`bit_or`, then a population count) instead of a DISTINCT count.

The rows are built from one queryset so the filters, the JSON rules and the
activity rule are the ones the Python computes use (tips.tip_hours,
activity.recent_days); the test that holds every SQL form to its Python compute
holds this relation too, through the groups that read it. The derived columns
are computed behind `OFFSET 0` fences: without them PostgreSQL pulls the
subqueries up and evaluates the time zone conversion once per reference.
"""

from datetime import timedelta

from django.db import connection
from django.db.models import BooleanField, Case, ExpressionWrapper, FloatField, Q, When

from engagement.activity import activity_filter
from engagement.models import Signal

from ..local_time import JsonNumber, LocalHourNumber
from ..registry import shared_sql
from ..set_sql import bit_count, bit_or, greatest, queryset_sql
from . import window

SERVED, FEEDBACK = "tip.served", "tip.feedback"
HOURS = range(24)
EPOCH_DATE = (1970, 1, 1)


def _flag(condition: Q) -> ExpressionWrapper:
    return ExpressionWrapper(condition, output_field=BooleanField())


def window_rows(users, now):
    """The window's signals of `users`, one row each, with the flags the aggregates count."""
    since, until = window(now)
    feedback = Q(name=FEEDBACK)
    return (
        Signal.objects.filter(user_id__in=users, occurred_at__gte=since, occurred_at__lte=until)
        .annotate(
            hour_number=LocalHourNumber("occurred_at", "user__timezone"),
            is_served=_flag(Q(name=SERVED)),
            is_feedback=_flag(feedback),
            is_completed=_flag(feedback & Q(properties__action="completed")),
            is_dismissed=_flag(feedback & Q(properties__action="dismissed")),
            dwell=Case(When(feedback, then=JsonNumber("properties", "dwell_ms")), output_field=FloatField()),
            is_sent=_flag(~Q(source=Signal.Source.SYSTEM)),
            is_active=_flag(activity_filter()),
        )
        .values("user_id", "occurred_at", "hour_number", "is_served", "is_feedback", "is_completed",
                "is_dismissed", "dwell", "is_sent", "is_active")
        .order_by()
    )


def first_day(now) -> int:
    """The day number (days since 1970-01-01) the active-day bits count from: two days before the
    window's first UTC day, so every local day of the window (offsets are within ±14 h) has a bit
    from 0 to 35 in a 64-bit integer."""
    since, until = window(now)
    start = since.date() - timedelta(days=2)
    if (until.date() + timedelta(days=2) - start).days > 62:
        raise ValueError("the window is too long for a 64-bit day mask")
    return (start - start.replace(*EPOCH_DATE)).days


def _fence() -> str:
    """Keeps a subquery's computed columns computed once per row (no pull-up)."""
    return "OFFSET 0" if connection.vendor == "postgresql" else "LIMIT -1 OFFSET 0"


@shared_sql("profile_signal_window")
def signal_window_sql(users, now):
    rows, params = queryset_sql(window_rows(users, now))
    flags = ("user_id, occurred_at, is_served, is_feedback, is_completed, is_dismissed, dwell, is_sent, "
             "is_active")
    hour = "((hour_number %% 24) + 24) %% 24"  # %% is the placeholder style's literal %; 0-23 before 1970 too
    clock = (f"SELECT {flags}, {hour} AS hour, (hour_number - {hour}) / 24 - %s AS day "
             f"FROM ({rows} {_fence()}) AS r {_fence()}")
    per_hour = ", ".join(f"COUNT(*) FILTER (WHERE is_feedback AND hour = {h}) AS h{h}" for h in HOURS)
    totals = (
        "SELECT user_id, COUNT(*) FILTER (WHERE is_served) AS served, "
        "COUNT(*) FILTER (WHERE is_feedback) AS feedback, COUNT(*) FILTER (WHERE is_completed) AS completed, "
        "COUNT(*) FILTER (WHERE is_dismissed) AS dismissed, "
        "SUM(dwell) AS dwell_sum, COUNT(dwell) AS dwell_n, "
        f"{per_hour}, COUNT(*) FILTER (WHERE is_sent) AS sent, "
        f"{bit_or('CAST(1 AS BIGINT) << CAST(day AS INTEGER)')} FILTER (WHERE is_active) AS active_mask, "
        f"MAX(occurred_at) FILTER (WHERE is_active) AS latest_active_at FROM ({clock}) AS c GROUP BY user_id"
    )
    most = greatest([f"h{h}" for h in HOURS])
    busiest = " ".join(f"WHEN h{h} = most THEN {h}" for h in HOURS)  # in order: ties to the earliest
    return (
        "SELECT user_id, served, feedback, completed, dismissed, dwell_sum, dwell_n, "
        f"CASE WHEN feedback > 0 THEN CASE {busiest} END END AS busiest_hour, sent, "
        f"{bit_count('active_mask')} AS active_days, latest_active_at "
        f"FROM (SELECT t.*, {most} AS most FROM ({totals}) AS t {_fence()}) AS m",
        [first_day(now), *params],  # the day's base comes before the rows in the text
    )
