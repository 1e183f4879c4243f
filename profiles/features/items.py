"""The item the user engages with most: the highest item engagement score at `now`."""

from django.db.models import F, Window
from django.db.models.expressions import RawSQL
from django.db.models.functions import RowNumber

from engagement.loops.scoring import score_params, score_sql
from engagement.models import ItemEngagement

from ..catalog import ANY
from ..registry import CATEGORICAL, single_feature


@single_feature(
    "top_item", CATEGORICAL,
    "The item with the highest engagement score at now (ties: the first item by name).",
    invalidated_by=[ANY], without_data="null (no item engagement)",
)
def top_item(user_ids, now):
    ranked = (
        ItemEngagement.objects.filter(user_id__in=user_ids)
        .annotate(live=RawSQL(score_sql(), score_params(now)))
        .annotate(rank=Window(RowNumber(), partition_by=[F("user_id")],
                              order_by=[F("live").desc(), F("item").asc()]))
        .filter(rank=1)
        .values_list("user_id", "item")
    )
    return dict(ranked)
