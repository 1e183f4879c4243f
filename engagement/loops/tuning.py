"""Closed-loop tuning: weekly jobs that learn per-tenant calibrations from the signal log.

- `tune_thresholds` (Monday 05:00 UTC): `inactivity-threshold-days`, the
  nearest-rank 90th percentile of the gaps in whole UTC days between
  consecutive active days of a tenant's members over the last 90 days, rounded
  up and clamped to [7, 30]. Tenants with fewer than 50 gaps are skipped (cold
  start: consumers keep their default). The lifecycle job consumes it.
- `tune_engagement` (Monday 05:30 UTC): `engagement-rate:<feature>`, the
  `$engage` signals per day of each (tenant, feature) over the 30 days before
  `now`. Features without signals write nothing.

Each reads all tenants in ONE aggregate query (the database groups; Python
sees only per-tenant aggregates, never per-user rows) and writes through
`calibration.write_calibrations`, isolated per tenant. Both are no-ops while
LOOPS_ENABLED is off.
"""

import logging
import math
from collections import defaultdict
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Count

from ..models import JobRun, Membership, Signal
from ..scheduler import JobResult
from .calibration import Learned, Window, write_calibrations

log = logging.getLogger("pulse.tuning")

THRESHOLD_KEY = "inactivity-threshold-days"
THRESHOLD_WINDOW_DAYS = 90
THRESHOLD_PERCENTILE = 0.9
THRESHOLD_BOUNDS = (7, 30)
MIN_GAPS = 50
ENGAGE_SIGNAL = "$engage"
ENGAGEMENT_WINDOW_DAYS = 30
ENGAGEMENT_KEY_PREFIX = "engagement-rate:"


# --- pure rules --------------------------------------------------------------


def engagement_rate(count: int, window_days: float) -> float:
    """Signals per day, to 4 decimals; 0 for an empty, zero or negative window or count."""
    if window_days <= 0 or count <= 0:
        return 0.0
    return round(count / window_days, 4)


def nearest_rank_percentile(histogram: dict[int, int], fraction: float) -> int | None:
    """The nearest-rank percentile of a histogram (value → how often): the smallest value
    whose cumulative count reaches ceil(fraction × total)."""
    total = sum(histogram.values())
    if total <= 0:
        return None
    rank = max(1, math.ceil(fraction * total))
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen >= rank:
            return value
    return None


def inactivity_threshold(histogram: dict[int, int]) -> int | None:
    """The clamped, rounded-up 90th percentile of the gaps; None below MIN_GAPS (cold start)."""
    if sum(histogram.values()) < MIN_GAPS:
        return None
    low, high = THRESHOLD_BOUNDS
    return min(high, max(low, math.ceil(nearest_rank_percentile(histogram, THRESHOLD_PERCENTILE))))


# --- jobs --------------------------------------------------------------------


def tune_thresholds(run: JobRun | None, now: datetime) -> JobResult:
    if not settings.LOOPS_ENABLED:
        return _disabled("tune_thresholds")
    start = now - timedelta(days=THRESHOLD_WINDOW_DAYS)
    histograms = gap_histograms(start, now)
    learned, skipped = [], 0
    for tenant_id, histogram in sorted(histograms.items()):
        value = inactivity_threshold(histogram)
        if value is None:
            skipped += 1
            continue
        learned.append(Learned(tenant_id, THRESHOLD_KEY, float(value), sum(histogram.values())))
    window = Window("tune_thresholds", start, now, THRESHOLD_WINDOW_DAYS, run)
    return _write(learned, window, now, skipped=skipped)


def tune_engagement(run: JobRun | None, now: datetime) -> JobResult:
    if not settings.LOOPS_ENABLED:
        return _disabled("tune_engagement")
    start = now - timedelta(days=ENGAGEMENT_WINDOW_DAYS)
    learned = [
        Learned(tenant_id, f"{ENGAGEMENT_KEY_PREFIX}{feature}",
                engagement_rate(count, ENGAGEMENT_WINDOW_DAYS), count)
        for (tenant_id, feature), count in sorted(engage_counts(start, now).items())
        if count > 0
    ]
    window = Window("tune_engagement", start, now, ENGAGEMENT_WINDOW_DAYS, run)
    return _write(learned, window, now)


def _disabled(kind: str) -> JobResult:
    log.info("event=tuning_skipped kind=%s reason=loops_disabled", kind)
    return JobResult()


def _write(learned: list[Learned], window: Window, now: datetime, skipped: int = 0) -> JobResult:
    written, failed = write_calibrations(learned, window, now=now)
    tenants = {v.tenant_id for v in learned}
    return JobResult(
        processed=len(tenants) + skipped, succeeded=len(written), failed=len(failed), skipped=skipped,
        errors=[failed[t] for t in sorted(failed)],
    )


# --- the aggregate reads -------------------------------------------------------


def engage_counts(start: datetime, end: datetime) -> dict[tuple[int, str], int]:
    """`$engage` signals per (tenant, feature) in [start, end): one GROUP BY."""
    rows = (
        Signal.objects.filter(
            name=ENGAGE_SIGNAL, occurred_at__gte=start, occurred_at__lt=end,
            tenant_id__isnull=False, feature__isnull=False,
        )
        .exclude(feature="")
        .values_list("tenant_id", "feature")
        .annotate(n=Count("id"))
        .order_by()
    )
    return {(tenant_id, feature): n for tenant_id, feature, n in rows}


def gap_histograms(start: datetime, end: datetime) -> dict[int, dict[int, int]]:
    """tenant id → {gap in whole UTC days → how many}, over the members' active days in [start, end).

    An active day is a UTC date with a signal the user sent (not a system or `$` signal).
    Distinct (tenant, user, day) rows, LAG over each user's days, grouped by (tenant, gap):
    one statement, window functions on both databases."""
    qn = connection.ops.quote_name
    signal, membership = qn(Signal._meta.db_table), qn(Membership._meta.db_table)
    if connection.vendor == "postgresql":
        day = "((s.occurred_at AT TIME ZONE 'UTC')::date - DATE '1970-01-01')"
        params = [start, end]
    else:
        day = "CAST(julianday(date(s.occurred_at)) AS INTEGER)"
        adapt = connection.ops.adapt_datetimefield_value
        params = [adapt(start), adapt(end)]
    sql = f"""
        WITH days AS (
            SELECT DISTINCT m.tenant_id AS tenant_id, s.user_id AS user_id, {day} AS day
            FROM {signal} AS s JOIN {membership} AS m ON m.user_id = s.user_id
            WHERE s.occurred_at >= %s AND s.occurred_at < %s
              AND s.source <> %s AND s.name NOT LIKE %s
        ), gaps AS (
            SELECT tenant_id, day - LAG(day) OVER (PARTITION BY tenant_id, user_id ORDER BY day) AS gap
            FROM days
        )
        SELECT tenant_id, gap, COUNT(*) FROM gaps WHERE gap IS NOT NULL GROUP BY tenant_id, gap
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, Signal.Source.SYSTEM, "$%"])
        rows = cursor.fetchall()
    histograms: dict[int, dict[int, int]] = defaultdict(dict)
    for tenant_id, gap, count in rows:
        histograms[tenant_id][int(gap)] = count
    return dict(histograms)
