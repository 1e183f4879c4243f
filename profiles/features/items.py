"""The item the user engages with most: the highest item engagement score at `now`."""

from django.db.models import F, Window
from django.db.models.expressions import RawSQL
from django.db.models.functions import RowNumber

from engagement.loops.scoring import score_params, score_sql
from engagement.models import ItemEngagement

from ..catalog import ANY
from ..registry import CATEGORICAL, single_feature, sql_for
from ..set_sql import one_row_per_feature, queryset_sql


@single_feature(
    "top_item", CATEGORICAL,
    "The item with the highest engagement score at now (ties: the first item by name).",
    invalidated_by=[ANY], without_data="null (no item engagement)",
)
def top_item(user_ids, now):
    return dict(top_items(user_ids, now))


def top_items(users, now):
    """(user_id, item) of each user's highest-scored item at `now`."""
    return (
        ItemEngagement.objects.filter(user_id__in=users)
        .annotate(live=RawSQL(score_sql(), score_params(now)))
        .annotate(rank=Window(RowNumber(), partition_by=[F("user_id")],
                              order_by=[F("live").desc(), F("item").asc()]))
        .filter(rank=1)
        .values_list("user_id", "item")
    )


@sql_for(top_item)
def top_item_sql(users, now):
    best, params = queryset_sql(top_items(users, now))
    rows = one_row_per_feature({}, "LEFT JOIN top_items t ON t.user_id = u.id", {"top_item": "t.item"})
    return f"WITH top_items (user_id, item) AS ({best}) {rows}", params
