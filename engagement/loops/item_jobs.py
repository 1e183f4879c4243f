"""Scheduled item engagement jobs: the daily score refresh and the weekly cleanup.

Both are set-based: one UPDATE or DELETE per chunk of ids, whatever the row
count, each chunk its own transaction so a long run holds no long lock and a
resumed run loses nothing (the score is a closed form of `now`: recomputing a
chunk twice stores the same value).
"""

from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import Max, Min

from ..models import ItemEngagement, JobRun
from ..scheduler import JobResult, extend_lease
from .scoring import score_params, score_sql

CHUNK_IDS = 20_000
IDLE_DAYS = 90
NEGLIGIBLE_SCORE = 0.01


def recompute_item_scores(run: JobRun | None, now: datetime) -> JobResult:
    """Store every row's score as of `now` (00:00 UTC daily)."""
    table = connection.ops.quote_name(ItemEngagement._meta.db_table)
    adapt = connection.ops.adapt_datetimefield_value
    stamp = now if connection.vendor == "postgresql" else adapt(now)
    updated = 0
    for low, high in _id_chunks():
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET score = {score_sql()}, scored_at = %s WHERE id >= %s AND id < %s",
                [*score_params(now), stamp, low, high],
            )
            updated += cursor.rowcount
        _keep_lease(run)
    return JobResult(processed=updated, succeeded=updated)


def cleanup_item_engagement(run: JobRun | None, now: datetime) -> JobResult:
    """Delete rows idle for more than 90 days whose score at `now` is below 0.01 (Sunday 02:00 UTC)."""
    table = connection.ops.quote_name(ItemEngagement._meta.db_table)
    cutoff = now - timedelta(days=IDLE_DAYS)
    adapt = connection.ops.adapt_datetimefield_value
    cutoff_param = cutoff if connection.vendor == "postgresql" else adapt(cutoff)
    deleted = 0
    for low, high in _id_chunks():
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {table} WHERE id >= %s AND id < %s AND last_interaction_at < %s"
                f" AND {score_sql()} < %s",
                [low, high, cutoff_param, *score_params(now), NEGLIGIBLE_SCORE],
            )
            deleted += cursor.rowcount
        _keep_lease(run)
    return JobResult(processed=deleted, succeeded=deleted)


def _id_chunks():
    """Half-open id ranges covering the table (min and max come from the primary key)."""
    bounds = ItemEngagement.objects.aggregate(low=Min("id"), high=Max("id"))
    if bounds["low"] is None:
        return
    for low in range(bounds["low"], bounds["high"] + 1, CHUNK_IDS):
        yield low, min(low + CHUNK_IDS, bounds["high"] + 1)


def _keep_lease(run: JobRun | None) -> None:
    if run is not None and run.pk:
        extend_lease(run)
