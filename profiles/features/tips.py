"""The tip features: how a user responds to tips, from `tip.served` and `tip.feedback`.

One pass over the user's tip signals of the last 30 days, grouped by user and
local hour, answers all five features (one query for any number of users). The
SQL form reads the per-user totals and busiest hour of the pass over the window
that it shares with the activity group (signal_window.py).
"""

from django.db.models import Count, Q, Sum

from engagement.models import Signal

from ..local_time import JsonNumber, LocalHour
from ..registry import NUMERIC, Feature, feature_group, sql_for
from ..set_sql import as_float, one_row_per_feature
from . import window
from .signal_window import FEEDBACK, SERVED, signal_window_sql


@feature_group(
    Feature("tip_volume_30d", NUMERIC, "Number of tip.served signals in the 30 days before now.",
            invalidated_by=[SERVED], without_data="0 (a count is honestly zero)"),
    Feature("completion_rate_30d", NUMERIC,
            "Share of tip.feedback signals in the last 30 days whose properties.action is completed.",
            invalidated_by=[FEEDBACK], without_data="null (no feedback)"),
    Feature("dismiss_rate_30d", NUMERIC,
            "Share of tip.feedback signals in the last 30 days whose properties.action is dismissed.",
            invalidated_by=[FEEDBACK], without_data="null (no feedback)"),
    Feature("mean_dwell_ms_30d", NUMERIC,
            "Mean of numeric properties.dwell_ms over the last 30 days' feedback that has it.",
            invalidated_by=[FEEDBACK], without_data="null (no feedback with a numeric dwell_ms)"),
    Feature("preferred_hour", NUMERIC,
            "Hour of day (0-23) in the user's own time zone with the most feedback in the last "
            "30 days; ties go to the earliest hour. UTC for users without a time zone.",
            invalidated_by=[FEEDBACK], without_data="null (no feedback)"),
    name="tips",
)
def tips(user_ids, now):
    totals: dict[int, dict] = {}
    for row in tip_hours(user_ids, now):
        into = totals.setdefault(row["user_id"], {"served": 0, "feedback": 0, "completed": 0,
                                                  "dismissed": 0, "dwell_sum": 0.0, "dwell_n": 0,
                                                  "hours": {}})
        for key in ("served", "feedback", "completed", "dismissed", "dwell_n"):
            into[key] += row[key]
        into["dwell_sum"] += row["dwell_sum"] or 0.0
        if row["feedback"]:
            into["hours"][row["hour"]] = into["hours"].get(row["hour"], 0) + row["feedback"]
    return _answers(user_ids, totals)


def tip_hours(users, now):
    """Per (user, local hour): the tip counts and dwell sums of the last 30 days. `users` is
    a list of ids or a queryset of them."""
    since, until = window(now)
    feedback = Q(name=FEEDBACK)
    return (
        Signal.objects.filter(user_id__in=users, name__in=[SERVED, FEEDBACK],
                              occurred_at__gte=since, occurred_at__lte=until)
        .annotate(hour=LocalHour("occurred_at", "user__timezone"))
        .values("user_id", "hour")
        .annotate(
            served=Count("pk", filter=Q(name=SERVED)),
            feedback=Count("pk", filter=feedback),
            completed=Count("pk", filter=feedback & Q(properties__action="completed")),
            dismissed=Count("pk", filter=feedback & Q(properties__action="dismissed")),
            dwell_sum=Sum(JsonNumber("properties", "dwell_ms"), filter=feedback),
            dwell_n=Count(JsonNumber("properties", "dwell_ms"), filter=feedback),
        )
        .order_by()
    )


@sql_for(tips, reads=[signal_window_sql])
def tips_sql(users, now):
    """From the shared pass over the window (signal_window.py): totals and the busiest hour per user."""
    window_table = signal_window_sql.name
    rows = one_row_per_feature(
        {
            "tip_volume_30d": "COALESCE(t.served, 0)",
            "completion_rate_30d": f"{as_float('t.completed')} / NULLIF(t.feedback, 0)",
            "dismiss_rate_30d": f"{as_float('t.dismissed')} / NULLIF(t.feedback, 0)",
            "mean_dwell_ms_30d": f"{as_float('t.dwell_sum')} / NULLIF(t.dwell_n, 0)",
            "preferred_hour": "t.busiest_hour",
        },
        f"LEFT JOIN {window_table} t ON t.user_id = u.id",
    )
    return rows, []


def _answers(user_ids, totals) -> dict[str, dict[int, object]]:
    answer = {name: {} for name in ("tip_volume_30d", "completion_rate_30d", "dismiss_rate_30d",
                                    "mean_dwell_ms_30d", "preferred_hour")}
    for uid in user_ids:
        t = totals.get(uid)
        answer["tip_volume_30d"][uid] = t["served"] if t else 0
        if not t or not t["feedback"]:
            continue
        answer["completion_rate_30d"][uid] = t["completed"] / t["feedback"]
        answer["dismiss_rate_30d"][uid] = t["dismissed"] / t["feedback"]
        if t["dwell_n"]:
            answer["mean_dwell_ms_30d"][uid] = t["dwell_sum"] / t["dwell_n"]
        answer["preferred_hour"][uid] = preferred_hour(t["hours"])
    return answer


def preferred_hour(feedback_by_hour: dict[int, int]) -> int | None:
    """The hour with the most feedback; ties to the earliest hour."""
    if not feedback_by_hour:
        return None
    return min(feedback_by_hour, key=lambda hour: (-feedback_by_hour[hour], hour))
