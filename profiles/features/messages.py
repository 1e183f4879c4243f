"""How the user answers in-app messages: reads ÷ delivered over the last 30 days."""

from django.db.models import Count, Q

from campaigns.models import Channel, Message

from ..registry import NUMERIC, single_feature
from . import window


@single_feature(
    "message_read_rate_30d", NUMERIC,
    "Read in-app messages ÷ in-app messages delivered (sent) in the last 30 days.",
    invalidated_by=["$engage"], without_data="null (no in-app message delivered)",
)
def message_read_rate_30d(user_ids, now):
    since, until = window(now)
    rows = (
        Message.objects.filter(user_id__in=user_ids, channel=Channel.IN_APP, status=Message.Status.SENT,
                               sent_at__gte=since, sent_at__lte=until)
        .values("user_id")
        .annotate(delivered=Count("pk"), read=Count("pk", filter=Q(read_at__lte=until)))
        .order_by()
    )
    return {row["user_id"]: row["read"] / row["delivered"] for row in rows if row["delivered"]}
