"""Bucket sizes and entered/left counts per day, for the API and the admin charts."""

from datetime import datetime, timedelta

from django.db.models import Count
from django.db.models.functions import TruncDate

from .models import BucketMembership, BucketTransition

DAYS = 14


def size(bucket_id: int) -> int:
    return BucketMembership.objects.filter(bucket_id=bucket_id, status="active").count()


def sizes(bucket_ids) -> dict[int, int]:
    rows = (BucketMembership.objects.filter(bucket_id__in=list(bucket_ids), status="active")
            .values("bucket_id").annotate(n=Count("id")))
    return {row["bucket_id"]: row["n"] for row in rows}


def recent_counts(bucket_id: int, *, now: datetime) -> dict:
    rows = (BucketTransition.objects.filter(bucket_id=bucket_id, occurred_at__gt=now - timedelta(days=DAYS),
                                            occurred_at__lte=now)
            .values("kind").annotate(n=Count("id")))
    counts = {row["kind"]: row["n"] for row in rows}
    return {"entered": counts.get("entered", 0), "left": counts.get("left", 0), "days": DAYS}


def daily_counts(bucket_ids, *, now: datetime) -> dict[int, list[tuple]]:
    """bucket id → [(date, entered, left)] for the last 14 days (oldest first), one query."""
    first = (now - timedelta(days=DAYS - 1)).date()
    start = datetime.combine(first, datetime.min.time(), tzinfo=now.tzinfo)
    rows = (BucketTransition.objects.filter(bucket_id__in=list(bucket_ids), occurred_at__gte=start,
                                            occurred_at__lte=now)
            .annotate(day=TruncDate("occurred_at")).values("bucket_id", "day", "kind")
            .annotate(n=Count("id")))
    found = {(r["bucket_id"], r["day"], r["kind"]): r["n"] for r in rows}
    days = [first + timedelta(days=i) for i in range(DAYS)]
    return {b: [(d, found.get((b, d, "entered"), 0), found.get((b, d, "left"), 0)) for d in days]
            for b in bucket_ids}
