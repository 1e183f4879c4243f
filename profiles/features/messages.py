"""How the user answers in-app messages: reads ÷ delivered over the last 30 days."""

from django.db.models import Count, Q

from campaigns.models import Channel, Message

from ..registry import NUMERIC, single_feature, sql_for
from ..set_sql import as_float, one_row_per_feature, queryset_sql
from . import window


@single_feature(
    "message_read_rate_30d", NUMERIC,
    "Read in-app messages ÷ in-app messages delivered (sent) in the last 30 days.",
    invalidated_by=["$engage"], without_data="null (no in-app message delivered)",
)
def message_read_rate_30d(user_ids, now):
    return {row["user_id"]: row["read"] / row["delivered"] for row in deliveries(user_ids, now)
            if row["delivered"]}


def deliveries(users, now):
    """Per user: in-app messages delivered in the last 30 days, and how many of them were read."""
    since, until = window(now)
    return (
        Message.objects.filter(user_id__in=users, channel=Channel.IN_APP, status=Message.Status.SENT,
                               sent_at__gte=since, sent_at__lte=until)
        .values("user_id")
        .annotate(delivered=Count("pk"), read=Count("pk", filter=Q(read_at__lte=until)))
        .order_by()
    )


@sql_for(message_read_rate_30d)
def message_read_rate_sql(users, now):
    counts, params = queryset_sql(deliveries(users, now))
    rows = one_row_per_feature({"message_read_rate_30d": f"{as_float('d.read')} / NULLIF(d.delivered, 0)"},
                               "LEFT JOIN message_deliveries d ON d.user_id = u.id")
    return f"WITH message_deliveries AS ({counts}) {rows}", params
