"""Item engagement in the user's life cycle: merge, erasure and the admin page panel."""

from collections import Counter

from django.db.models import Count, Max, Sum

from ..bulk import insert_returning
from ..models import ItemEngagement
from .item_queries import scored
from .scoring import item_score, rounded

PANEL_ITEMS = 20


def merge_item_engagement(survivor, losers, now) -> None:
    """PULSE_USER_MERGE_HANDLERS: fold the losers' rows into the survivor's, item by item.

    Counts and per-type counts are summed, the earliest first and the latest last
    interaction kept, the context of the latest interaction kept. Three queries
    whatever the number of items.
    """
    ids = [survivor.pk, *(u.pk for u in losers)]
    rows = list(ItemEngagement.objects.filter(user_id__in=ids).order_by("item", "pk"))
    if not any(row.user_id != survivor.pk for row in rows):
        return
    merged: dict[str, dict] = {}
    for row in rows:
        into = merged.get(row.item)
        if into is None:
            merged[row.item] = {
                "user_id": survivor.pk, "item": row.item, "interactions": row.interactions,
                "by_type": Counter(row.by_type), "first_interaction_at": row.first_interaction_at,
                "last_interaction_at": row.last_interaction_at, "context": row.context,
            }
            continue
        into["interactions"] += row.interactions
        into["by_type"].update(row.by_type)
        into["first_interaction_at"] = min(into["first_interaction_at"], row.first_interaction_at)
        if row.last_interaction_at > into["last_interaction_at"]:
            into["last_interaction_at"] = row.last_interaction_at
            into["context"] = row.context or into["context"]
    for values in merged.values():
        values["by_type"] = dict(sorted(values["by_type"].items()))
        values["score"] = item_score(values["interactions"], values["last_interaction_at"], now)
        values["scored_at"] = now
    ItemEngagement.objects.filter(user_id__in=ids[1:]).delete()
    insert_returning(
        ItemEngagement, [merged[item] for item in sorted(merged)], conflict_fields=["user", "item"],
        update_fields=["interactions", "by_type", "first_interaction_at", "last_interaction_at",
                       "context", "score", "scored_at"],
    )


def erase_item_engagement(erasure) -> dict:
    """PULSE_USER_ERASE_HANDLERS: the rows go, the merged users' too (their context may quote
    the user)."""
    removed = ItemEngagement.objects.filter(user_id__in=erasure.user_ids).delete()[0]
    return {"item_engagements_removed": removed}


def item_engagement_panel(user) -> dict | None:
    """PULSE_USER_ADMIN_PANELS: the top items scored now, and totals. Two queries."""
    from django.utils import timezone

    now = timezone.now()
    rows = list(
        scored(ItemEngagement.objects.filter(user=user), now)
        .order_by("-live_score", "-last_interaction_at", "item")[:PANEL_ITEMS]
    )
    if not rows:
        return None
    totals = ItemEngagement.objects.filter(user=user).aggregate(
        total=Sum("interactions"), items=Count("id"), last=Max("last_interaction_at")
    )
    for row in rows:
        row.shown_score = rounded(row.live_score)
    return {
        "title": f"Item engagement (top {PANEL_ITEMS}, scored now)",
        "template": "admin/engagement/enduser/panels/item_engagement.html",
        "context": {"rows": rows, "totals": totals, "limit": PANEL_ITEMS},
    }
