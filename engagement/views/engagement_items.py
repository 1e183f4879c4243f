"""`/api/v1/users/<user_ref>/engagement` and `/rank`: what a user engages with, scored now."""

from django.utils import timezone

from .. import validation as v
from ..api import ApiError, api_view, json_response, parse_json_object, user_for_ref
from ..loops.item_queries import MAX_RANKED, rank, serialize, stats, top_items

DEFAULT_LIMIT = 10
MAX_LIMIT = 100
RANK = {"items": v.Field(v.list_of(v.string(255), max_items=MAX_RANKED), required=True)}


@api_view({"GET": "read"})
def user_engagement(request, user_ref):
    user = user_for_ref(request, user_ref)
    limit = _limit(request.GET.get("limit"))
    now = timezone.now()
    top = top_items(user, now=now, limit=limit)
    summary = stats(user, now=now, top=top)
    return json_response({
        "items": [serialize(row) for row in top],
        "stats": {
            "total_interactions": summary.total_interactions,
            "unique_items": summary.unique_items,
            "avg_interactions_per_item": summary.avg_interactions_per_item,
            "most_engaged_items": summary.most_engaged_items,
            "last_interaction_at": summary.last_interaction_at.isoformat()
            if summary.last_interaction_at else None,
        },
    })


@api_view({"POST": "read"})
def user_rank(request, user_ref):
    user = user_for_ref(request, user_ref)
    try:
        items = v.validate(parse_json_object(request), RANK)["items"]
    except v.Invalid as exc:
        raise ApiError(400, "invalid_request", "the body has invalid fields", exc.errors[:20]) from None
    return json_response({"items": rank(user, items, now=timezone.now())})


def _limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise ApiError(400, "invalid_request", f"limit must be a whole number from 1 to {MAX_LIMIT}",
                       [{"field": "limit", "message": f"must be between 1 and {MAX_LIMIT}"}])
    return int(raw)
