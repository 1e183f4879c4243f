"""The staleness panel's figures: per feature, how many eligible users have a fresh,
a stale or no value. Eligible users are live users seen in the last 30 days.

Two aggregate queries whatever the number of users: the eligible count, and
one GROUP BY name over the stored rows of eligible users, where each
feature's own TTL decides fresh (a CASE per feature).
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Case, Count, IntegerField, Sum, When

from engagement.models import EndUser

from . import registry
from .models import ProfileFeatureValue

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
    fresh = Case(*[When(name=name, computed_at__gt=now - f.ttl, then=1) for name, f in features.items()],
                 default=0, output_field=IntegerField())
    rows = (
        ProfileFeatureValue.objects.filter(
            name__in=list(features), computed_at__isnull=False, computed_at__lte=now,
            user__deleted_at__isnull=True, user__last_seen_at__gte=now - ELIGIBLE_WINDOW,
            user__last_seen_at__lte=now,
        )
        .values("name").annotate(stored=Count("pk"), fresh=Sum(fresh)).order_by()
    )
    by_name = {row["name"]: row for row in rows}
    figures = []
    for name in features:
        row = by_name.get(name, {"stored": 0, "fresh": 0})
        fresh_count = row["fresh"] or 0
        figures.append(FeatureStaleness(name, fresh_count, row["stored"] - fresh_count,
                                        max(0, eligible - row["stored"])))
    return eligible, figures


