"""The staleness panel's figures: per feature, how many eligible users have a fresh,
a stale or no value. Eligible users are live users seen in the last 30 days.

Two aggregate queries whatever the number of users: the eligible count, and
one count per feature of the stored rows of eligible users, joined to a list of
(name, cutoff) pairs — each feature's own TTL gives its cutoff, and a value is
fresh when computed after it. The index on (name, computed_at) serves the
per-feature ranges; the eligibility join is one hash of the eligible users.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection

from engagement.models import EndUser

from . import registry
from .models import ProfileFeatureValue
from .set_sql import cutoffs, timestamp

ELIGIBLE_WINDOW = timedelta(days=30)


@dataclass(frozen=True)
class FeatureStaleness:
    name: str
    fresh: int
    stale: int
    missing: int

    @property
    def total(self) -> int:
        return self.fresh + self.stale + self.missing


def eligible_users(now: datetime):
    return EndUser.objects.filter(deleted_at__isnull=True, last_seen_at__gte=now - ELIGIBLE_WINDOW,
                                  last_seen_at__lte=now)


def staleness(now: datetime) -> tuple[int, list[FeatureStaleness]]:
    features = registry.features()
    eligible = eligible_users(now).count()
    by_name = _stored_counts(features, now) if features else {}
    figures = []
    for name in features:
        stored, fresh = by_name.get(name, (0, 0))
        figures.append(FeatureStaleness(name, fresh, stored - fresh, max(0, eligible - stored)))
    return eligible, figures


def _stored_counts(features, now: datetime) -> dict[str, tuple[int, int]]:
    """{name: (stored values, fresh values)} over eligible users: one query."""
    cutoff_rows, params = cutoffs((name, now - feature.ttl) for name, feature in features.items())
    at, at_param = timestamp(now)
    since, since_param = timestamp(now - ELIGIBLE_WINDOW)
    values = connection.ops.quote_name(ProfileFeatureValue._meta.db_table)
    users = connection.ops.quote_name(EndUser._meta.db_table)
    sql = (
        f"SELECT f.name, COUNT(*), COUNT(*) FILTER (WHERE p.computed_at > f.cutoff) "
        f"FROM ({cutoff_rows}) AS f "
        f"JOIN {values} AS p ON p.name = f.name AND p.computed_at IS NOT NULL AND p.computed_at <= {at} "
        f"JOIN {users} AS u ON u.id = p.user_id AND u.deleted_at IS NULL "
        f"AND u.last_seen_at >= {since} AND u.last_seen_at <= {at} "
        f"GROUP BY f.name"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, at_param, since_param, at_param])
        return {name: (stored, fresh) for name, stored, fresh in cursor.fetchall()}
