"""Profiles' merge and erase handlers (PULSE_USER_MERGE_HANDLERS, PULSE_USER_ERASE_HANDLERS)."""

from . import registry, store
from .models import ProfileFeatureValue


def merge_profiles(survivor, losers, now) -> None:
    """The losers' values go (they describe a user that no longer exists) and the survivor's
    are invalidated: its signals now include the losers', so every value is outdated. Two
    statements whatever the number of losers."""
    ProfileFeatureValue.objects.filter(user_id__in=[u.pk for u in losers]).delete()
    store.invalidate([(survivor.pk, name) for name in registry.features()], now)


def erase_profiles(erasure) -> dict:
    """Derived from the user's signals, so personal data: the rows go, the merged users' too."""
    removed = ProfileFeatureValue.objects.filter(user_id__in=erasure.user_ids).delete()[0]
    return {"profile_values_removed": removed}
