"""Per-user answers about item engagement, scored for the moment of the question.

The score is computed in SQL from the stored counts and times (the same
closed form the daily job stores), so an answer never lags that job.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Max, Sum
from django.db.models.expressions import RawSQL

from ..models import EndUser, ItemEngagement
from .scoring import rounded, score_params, score_sql

MOST_ENGAGED = 5
MAX_RANKED = 1000


def scored(queryset, now: datetime):
    """The rows annotated with `live_score`: their score at `now`."""
    return queryset.annotate(live_score=RawSQL(score_sql(), score_params(now)))


def top_items(user: EndUser, *, now: datetime, limit: int) -> list[ItemEngagement]:
    """The user's items by score at `now` (ties: most recent first, then by key)."""
    rows = scored(ItemEngagement.objects.filter(user=user), now)
    return list(rows.order_by("-live_score", "-last_interaction_at", "item")[:limit])


@dataclass(frozen=True)
class Stats:
    total_interactions: int
    unique_items: int
    avg_interactions_per_item: float
    most_engaged_items: list[str]
    last_interaction_at: datetime | None


def stats(user: EndUser, *, now: datetime, top: list[ItemEngagement]) -> Stats:
    """Totals in one aggregate query; the most engaged items come from `top` when it holds enough."""
    totals = ItemEngagement.objects.filter(user=user).aggregate(
        total=Sum("interactions"), items=Count("id"), last=Max("last_interaction_at")
    )
    total, items = totals["total"] or 0, totals["items"]
    most = top if len(top) >= min(MOST_ENGAGED, items) else top_items(user, now=now, limit=MOST_ENGAGED)
    return Stats(
        total_interactions=total,
        unique_items=items,
        avg_interactions_per_item=round(total / items, 2) if items else 0.0,
        most_engaged_items=[row.item for row in most[:MOST_ENGAGED]],
        last_interaction_at=totals["last"],
    )


def rank(user: EndUser, items: list[str], *, now: datetime) -> list[str]:
    """`items` reordered: the ones the user engaged with by score (ties keep input order),
    then the unknown ones in input order. Duplicates keep their first place."""
    order = {item: index for index, item in reversed(list(enumerate(items)))}
    unique = sorted(order, key=order.__getitem__)
    known = dict(
        scored(ItemEngagement.objects.filter(user=user, item__in=unique), now).values_list(
            "item", "live_score"
        )
    )
    ranked = sorted(known, key=lambda item: (-known[item], order[item]))
    return ranked + [item for item in unique if item not in known]


def serialize(row: ItemEngagement) -> dict:
    return {
        "item": row.item,
        "score": rounded(row.live_score),
        "interactions": row.interactions,
        "by_type": row.by_type,
        "first_interaction_at": row.first_interaction_at.isoformat(),
        "last_interaction_at": row.last_interaction_at.isoformat(),
        "context": row.context,
    }
