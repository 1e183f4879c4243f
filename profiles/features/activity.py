"""What the user did lately: signals, active days, days since the last activity.

Activity is engagement.activity's one rule (`activity_filter()`): client
signals, not Pulse's own bookkeeping. One pass over the last 30 days, grouped
by user and local day (a hash aggregate: a DISTINCT count per user would make
PostgreSQL read the whole log in user order, through its index, one heap page at
a time), answers all three for almost everyone; only users without activity in the window
have their older history read (through the log's index that leads with the
user), so the whole log is never scanned for the latest activity. Two queries
for any number of users. The SQL form reads the per-user counts, active-day
count and latest activity of the pass over the window it shares with the tip
group (signal_window.py).
"""

import math

from django.db.models import Count, Max, Q
from django.db.models.expressions import RawSQL

from engagement.activity import activity_filter
from engagement.models import Signal

from ..catalog import ANY
from ..local_time import LocalDate
from ..registry import NUMERIC, Feature, feature_group, sql_for
from ..set_sql import USERS, one_row_per_feature, queryset_sql, timestamp, whole_days
from . import window
from .signal_window import signal_window_sql


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
    counts: dict[int, dict] = {}
    for row in recent_days(user_ids, now):
        into = counts.setdefault(row["user_id"], {"sent": 0, "days": 0, "latest_at": None})
        into["sent"] += row["sent"]
        if row["active"]:
            into["days"] += 1
            if into["latest_at"] is None or row["latest_at"] > into["latest_at"]:
                into["latest_at"] = row["latest_at"]
    latest = {uid: row["latest_at"] for uid, row in counts.items() if row["latest_at"] is not None}
    quiet = [uid for uid in user_ids if uid not in latest]
    if quiet:
        latest.update(earlier_activity(quiet, now).values_list("user_id", "latest_at"))
    answer = {"signals_30d": {}, "active_days_30d": {}, "days_since_last_activity": {}}
    for uid in user_ids:
        row = counts.get(uid)
        answer["signals_30d"][uid] = row["sent"] if row else 0
        answer["active_days_30d"][uid] = row["days"] if row else 0
        if uid in latest:
            answer["days_since_last_activity"][uid] = math.floor((now - latest[uid]).total_seconds() / 86400)
    return answer


def recent_days(users, now):
    """Per (user, local day) of the last 30 days: signals sent, activity signals, the latest one."""
    since, until = window(now)
    return (
        Signal.objects.filter(user_id__in=users, occurred_at__gte=since, occurred_at__lte=until)
        .annotate(day=LocalDate("occurred_at", "user__timezone"))
        .values("user_id", "day")
        .annotate(
            sent=Count("pk", filter=~Q(source=Signal.Source.SYSTEM)),
            active=Count("pk", filter=activity_filter()),
            latest_at=Max("occurred_at", filter=activity_filter()),
        )
        .order_by()
    )


def earlier_activity(users, now):
    """Per user, the latest activity before the window."""
    since, _ = window(now)
    return (
        Signal.objects.filter(activity_filter(), user_id__in=users, occurred_at__lt=since)
        .values("user_id").annotate(latest_at=Max("occurred_at")).order_by()
    )


@sql_for(activity, reads=[signal_window_sql])
def activity_sql(users, now):
    """From the shared pass over the window (signal_window.py), and the latest earlier activity of
    the users without any in the window (through the log's index that leads with the user)."""
    recent = signal_window_sql.name
    quiet = RawSQL(f"SELECT id FROM {USERS} EXCEPT "
                   f"SELECT user_id FROM {recent} WHERE latest_active_at IS NOT NULL", ())
    earlier, earlier_params = queryset_sql(earlier_activity(quiet, now))
    at, at_param = timestamp(now)
    rows = one_row_per_feature(
        {
            "signals_30d": "COALESCE(r.sent, 0)",
            "active_days_30d": "COALESCE(r.active_days, 0)",
            "days_since_last_activity": whole_days("COALESCE(r.latest_active_at, e.latest_at)", at),
        },
        f"LEFT JOIN {recent} r ON r.user_id = u.id LEFT JOIN activity_earlier e ON e.user_id = u.id",
    )
    return f"WITH activity_earlier AS ({earlier}) {rows}", [*earlier_params, at_param]
