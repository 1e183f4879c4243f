"""A user's profile as callers read it: every feature, with how fresh it is.

`get_profile` recomputes only what is missing or expired (one batch per
feature group) and costs one query when everything is fresh. `peek_profile`
reads the stored rows and computes nothing. `rebuild_profile` recomputes all.
Each reading carries its value, `computed_at`, age, TTL and `stale`, so an
expired value can never pass for a fresh one; a computation that failed
leaves the stored value in place, marked stale, with the failure named.
"""

from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from . import registry, store
from .refresh import is_fresh, refresh_chunk
from .registry import CATEGORICAL, Feature

# A computation refused because an invalidation came in meanwhile is tried this many times.
ATTEMPTS = 2


@dataclass(frozen=True)
class Reading:
    feature: Feature
    value: float | int | str | None
    computed_at: datetime | None
    age_seconds: int | None
    stale: bool
    error: str | None = None

    def as_json(self) -> dict:
        answer = {
            "value": self.value, "dtype": self.feature.dtype,
            "computed_at": self.computed_at.isoformat() if self.computed_at else None,
            "age_seconds": self.age_seconds, "ttl_seconds": self.feature.ttl_seconds, "stale": self.stale,
        }
        if self.error:
            answer["error"] = self.error
        return answer


def answer_value(feature: Feature, value: float | None, text: str | None):
    """Numbers rounded to 4 decimals (whole numbers as integers); categories as stored."""
    if feature.dtype == CATEGORICAL:
        return text
    if value is None:
        return None
    rounded = round(value, 4)
    return int(rounded) if rounded.is_integer() else rounded


def reading(feature: Feature, row: store.Stored | None, now: datetime, error: str | None = None) -> Reading:
    if row is None or row.computed_at is None:
        return Reading(feature, None, None, None, True, error)
    age = max(0, int((now - row.computed_at).total_seconds()))
    stale = error is not None or not is_fresh(row, feature, now)
    value = answer_value(feature, row.value, row.value_text)
    return Reading(feature, value, row.computed_at, age, stale, error)


def peek_profile(user, now: datetime | None = None) -> dict[str, Reading]:
    now = now or timezone.now()
    stored = store.read([user.pk])
    return {name: reading(f, stored.get((user.pk, name)), now) for name, f in registry.features().items()}


def get_profile(user, now: datetime | None = None, *, force: bool = False) -> dict[str, Reading]:
    now = now or timezone.now()
    features = registry.features()
    stored = store.read([user.pk])
    errors: dict[str, str] = {}
    for _ in range(ATTEMPTS):
        pending = [f for f in features.values()
                   if force or not is_fresh(stored.get((user.pk, f.name)), f, now)]
        if not pending:
            break
        done = refresh_chunk([user.pk], pending, now, force=True, stored=stored)
        refused = []
        for (uid, name), row in done.answers.items():
            if (uid, name) in done.written_pairs:
                stored[(uid, name)] = store.Stored(row.value, row.value_text, row.computed_at,
                                                   row.expected_generation)
                errors.pop(name, None)
            else:
                refused.append(name)
                errors[name] = "invalidated_while_computing"
        for _, name in done.failed_pairs:
            errors[name] = "computation_failed"
        if not refused:
            break
        # An invalidation came in while computing: read those pairs again and retry them.
        stored.update(store.read([user.pk], refused))
        force = False
    return {name: reading(f, stored.get((user.pk, name)), now, errors.get(name))
            for name, f in features.items()}


def rebuild_profile(user, now: datetime | None = None) -> dict[str, Reading]:
    """Recompute every feature of the user now, whatever its freshness."""
    return get_profile(user, now, force=True)


def profile_json(readings: dict[str, Reading]) -> dict:
    failed = sorted(name for name, r in readings.items() if r.error)
    answer = {"features": {name: r.as_json() for name, r in readings.items()}}
    if failed:
        answer["features_failed"] = failed
    return answer
