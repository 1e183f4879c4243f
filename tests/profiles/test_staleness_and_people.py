"""The staleness panel's counts, and profiles' merge and erase handlers."""

from datetime import timedelta

import pytest

from engagement.erase import ErasureContext
from profiles import registry
from profiles.models import ProfileFeatureValue
from profiles.people import erase_profiles, merge_profiles
from profiles.reads import get_profile
from profiles.staleness import staleness
from tests.factories import EndUserFactory

from .helpers import NOW

pytestmark = pytest.mark.django_db


def test_staleness_counts_fresh_stale_and_missing_values_across_eligible_users_only(
    django_assert_num_queries,
):
    seen = {"last_seen_at": NOW - timedelta(days=1)}
    fresh, stale, missing = EndUserFactory(**seen), EndUserFactory(**seen), EndUserFactory(**seen)
    long_gone = EndUserFactory(last_seen_at=NOW - timedelta(days=31))
    erased = EndUserFactory(last_seen_at=NOW, deleted_at=NOW)
    never_seen = EndUserFactory(last_seen_at=None)
    for user in (long_gone, erased, never_seen):
        get_profile(user, NOW)
    get_profile(fresh, NOW)
    get_profile(stale, NOW - timedelta(hours=2))
    get_profile(missing, NOW)
    ProfileFeatureValue.objects.filter(user=missing, name="tip_volume_30d").delete()
    ProfileFeatureValue.objects.filter(user=fresh, name="top_item").update(computed_at=None)  # invalidated
    with django_assert_num_queries(2):
        eligible, figures = staleness(NOW)
    assert eligible == 3
    by_name = {f.name: (f.fresh, f.stale, f.missing) for f in figures}
    assert set(by_name) == set(registry.features())
    assert by_name["tip_volume_30d"] == (1, 1, 1)
    assert by_name["top_item"] == (1, 1, 1)
    assert by_name["signals_30d"] == (2, 1, 0)


def test_a_value_computed_exactly_one_ttl_ago_counts_as_stale():
    user = EndUserFactory(last_seen_at=NOW)
    get_profile(user, NOW - registry.get("signals_30d").ttl)
    _, figures = staleness(NOW)
    assert {f.name: f.stale for f in figures}["signals_30d"] == 1


def test_a_merge_drops_the_losers_values_and_invalidates_the_survivors(django_assert_num_queries):
    survivor, loser = EndUserFactory(), EndUserFactory()
    get_profile(survivor, NOW)
    get_profile(loser, NOW)
    with django_assert_num_queries(2):
        merge_profiles(survivor, [loser], NOW)
    assert not ProfileFeatureValue.objects.filter(user=loser).exists()
    assert not ProfileFeatureValue.objects.filter(user=survivor, computed_at__isnull=False).exists()
    assert set(ProfileFeatureValue.objects.filter(user=survivor).values_list("generation", flat=True)) == {1}


def test_an_erasure_removes_the_values_of_the_user_and_of_the_users_merged_into_it():
    user, merged, bystander = EndUserFactory(), EndUserFactory(), EndUserFactory()
    for u in (user, merged, bystander):
        get_profile(u, NOW)
    counts = erase_profiles(ErasureContext(user=user, merged_ids=(merged.pk,), now=NOW))
    assert counts == {"profile_values_removed": 2 * len(registry.features())}
    assert set(ProfileFeatureValue.objects.values_list("user_id", flat=True)) == {bystander.pk}
    assert erase_profiles(ErasureContext(user=user, merged_ids=(merged.pk,), now=NOW)) == {
        "profile_values_removed": 0}
