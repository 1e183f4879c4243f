"""What the user did lately: signals, active days, days since the last activity.

Activity is engagement.activity's one rule (`activity_filter()`): client
signals, not Pulse's own bookkeeping. Two queries for any number of users.
"""

import math

from django.db.models import Count, Max, Q

from engagement.activity import activity_filter
from engagement.models import Signal

from ..catalog import ANY
from ..local_time import LocalDate
from ..registry import NUMERIC, Feature, feature_group
from . import window


@feature_group(
    Feature("signals_30d", NUMERIC,
            "Signals the user sent (any source but Pulse's own system signals) in the last 30 days.",
            invalidated_by=[ANY], without_data="0"),
    Feature("active_days_30d", NUMERIC,
            "Days, in the user's own time zone, with at least one activity signal in the last 30 days.",
            invalidated_by=[ANY], without_data="0"),
    Feature("days_since_last_activity", NUMERIC,
            "Whole days from the user's latest activity signal (at or before now) to now.",
            invalidated_by=[ANY], without_data="null (never active)"),
    name="activity",
)
def activity(user_ids, now):
    since, until = window(now)
    recent = (
        Signal.objects.filter(user_id__in=user_ids, occurred_at__gte=since, occurred_at__lte=until)
        .values("user_id")
        .annotate(
            sent=Count("pk", filter=~Q(source=Signal.Source.SYSTEM)),
            days=Count(LocalDate("occurred_at", "user__timezone"), distinct=True, filter=activity_filter()),
        )
        .order_by()
    )
    latest = dict(
        Signal.objects.filter(activity_filter(), user_id__in=user_ids, occurred_at__lte=until)
        .values("user_id").annotate(last=Max("occurred_at")).order_by().values_list("user_id", "last")
    )
    counts = {row["user_id"]: row for row in recent}
    answer = {"signals_30d": {}, "active_days_30d": {}, "days_since_last_activity": {}}
    for uid in user_ids:
        row = counts.get(uid)
        answer["signals_30d"][uid] = row["sent"] if row else 0
        answer["active_days_30d"][uid] = row["days"] if row else 0
        if uid in latest:
            answer["days_since_last_activity"][uid] = math.floor((now - latest[uid]).total_seconds() / 86400)
    return answer
