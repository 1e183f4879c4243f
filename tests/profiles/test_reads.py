"""get_profile, peek and rebuild: TTL expiry, lazy recompute, query counts, failures reported."""

from datetime import timedelta

import pytest

from engagement.models import EndUser
from profiles import registry
from profiles.models import ProfileFeatureValue
from profiles.reads import get_profile, peek_profile, profile_json, rebuild_profile
from profiles.refresh import refresh_expired
from tests.factories import EndUserFactory

from .helpers import NOW, feedback, signal

pytestmark = pytest.mark.django_db
NAMES = set(registry.features())


def stored(user, name):
    return ProfileFeatureValue.objects.get(user=user, name=name)


def test_a_first_read_computes_every_feature_and_stores_nulls_as_rows():
    user = EndUserFactory()
    signal(user, "tip.served", NOW - timedelta(hours=2))
    profile = get_profile(user, NOW)
    assert set(profile) == NAMES
    assert not any(r.stale for r in profile.values())
    assert profile["tip_volume_30d"].value == 1
    assert profile["completion_rate_30d"].value is None
    assert profile["completion_rate_30d"].computed_at == NOW
    assert ProfileFeatureValue.objects.filter(user=user).count() == len(NAMES)
    assert stored(user, "completion_rate_30d").computed_at == NOW  # a computed null, not a missing row


def test_a_fully_fresh_profile_costs_one_query(django_assert_num_queries):
    user = EndUserFactory()
    get_profile(user, NOW)
    with django_assert_num_queries(1):
        profile = get_profile(user, NOW + timedelta(minutes=59))
    assert not any(r.stale for r in profile.values())


def test_a_value_expires_exactly_at_computed_at_plus_ttl_and_is_recomputed_on_the_next_read():
    user = EndUserFactory()
    get_profile(user, NOW)
    signal(user, "tip.served", NOW + timedelta(minutes=10))  # no drain: only the TTL can notice
    ttl = registry.get("tip_volume_30d").ttl
    just_before = get_profile(user, NOW + ttl - timedelta(microseconds=1))
    assert just_before["tip_volume_30d"].value == 0
    assert just_before["tip_volume_30d"].age_seconds == int(ttl.total_seconds()) - 1
    assert peek_profile(user, NOW + ttl)["tip_volume_30d"].stale is True
    at_expiry = get_profile(user, NOW + ttl)
    assert at_expiry["tip_volume_30d"].value == 1
    assert at_expiry["tip_volume_30d"].computed_at == NOW + ttl
    assert at_expiry["tip_volume_30d"].stale is False


def test_only_missing_or_expired_features_are_recomputed_one_batch_per_group(django_assert_num_queries):
    user = EndUserFactory()
    get_profile(user, NOW)
    ProfileFeatureValue.objects.filter(user=user, name__in=["tip_volume_30d", "preferred_hour"]).delete()
    before = {r.name: r.computed_at for r in ProfileFeatureValue.objects.filter(user=user)}
    # the read, the tips group's one query inside its savepoint (2 more), one write
    with django_assert_num_queries(5):
        profile = get_profile(user, NOW + timedelta(minutes=5))
    assert profile["tip_volume_30d"].computed_at == NOW + timedelta(minutes=5)
    assert profile["completion_rate_30d"].computed_at == NOW  # same group, still fresh: not rewritten
    after = {r.name: r.computed_at for r in ProfileFeatureValue.objects.filter(user=user)}
    assert {n for n in after if after[n] != before.get(n)} == {"tip_volume_30d", "preferred_hour"}


def test_peek_never_computes(django_assert_num_queries):
    user = EndUserFactory()
    with django_assert_num_queries(1):
        profile = peek_profile(user, NOW)
    assert all(r.stale and r.value is None and r.computed_at is None for r in profile.values())
    assert not ProfileFeatureValue.objects.filter(user=user).exists()
    get_profile(user, NOW)
    ttl = registry.get("signals_30d").ttl
    with django_assert_num_queries(1):
        later = peek_profile(user, NOW + ttl)
    assert later["signals_30d"].stale is True and later["signals_30d"].value == 0
    assert stored(user, "signals_30d").computed_at == NOW


def test_rebuild_recomputes_everything_even_when_fresh():
    user = EndUserFactory()
    get_profile(user, NOW)
    feedback(user, NOW + timedelta(minutes=1), "completed")
    rebuilt = rebuild_profile(user, NOW + timedelta(minutes=2))
    assert rebuilt["completion_rate_30d"].value == 1
    assert {r.computed_at for r in rebuilt.values()} == {NOW + timedelta(minutes=2)}


def test_numbers_are_answered_rounded_to_four_decimals():
    user = EndUserFactory()
    for action in ("completed", "dismissed", "dismissed"):
        feedback(user, NOW - timedelta(hours=1), action)
    answer = profile_json(get_profile(user, NOW))["features"]
    assert answer["completion_rate_30d"]["value"] == 0.3333
    assert answer["dismiss_rate_30d"]["value"] == 0.6667
    assert answer["completion_rate_30d"]["dtype"] == "numeric"
    assert answer["top_item"]["dtype"] == "categorical"
    assert stored(user, "completion_rate_30d").value == pytest.approx(1 / 3)


def test_a_failing_computation_is_reported_and_its_old_value_shown_as_stale():
    user = EndUserFactory()
    get_profile(user, NOW)
    group = registry.get("tip_volume_30d").group

    def broken(user_ids, now):
        raise RuntimeError("boom")

    object.__setattr__(group, "compute", broken)
    try:
        later = NOW + timedelta(hours=2)
        profile = get_profile(user, later)
    finally:
        from profiles.features.tips import tips

        object.__setattr__(group, "compute", tips)
    assert profile["tip_volume_30d"].stale is True
    assert profile["tip_volume_30d"].error == "computation_failed"
    assert profile["tip_volume_30d"].computed_at == NOW
    assert profile["signals_30d"].stale is False  # other groups still recomputed
    assert "tip_volume_30d" in profile_json(profile)["features_failed"]


def test_refresh_expired_brings_many_users_up_to_date_with_queries_per_chunk_not_per_user(
    django_assert_max_num_queries,
):
    users = [EndUserFactory() for _ in range(7)]
    for user in users:
        signal(user, "tip.served", NOW - timedelta(hours=1))
    get_profile(users[0], NOW)
    queryset = EndUser.objects.filter(pk__in=[u.pk for u in users])
    # per chunk: ids, stored rows, the tips group in its savepoint (3), one write: 3 chunks + the empty page
    with django_assert_max_num_queries(6 * 3 + 1):
        result = refresh_expired(["tip_volume_30d", "completion_rate_30d"], queryset, NOW, batch_size=3)
    assert result.users == 7
    assert result.written == 6 * 2  # the first user's values were fresh
    volumes = ProfileFeatureValue.objects.filter(name="tip_volume_30d").values_list("value", flat=True)
    assert set(volumes) == {1.0}
    assert not ProfileFeatureValue.objects.filter(name="signals_30d").exclude(user=users[0]).exists()


def test_refresh_expired_skips_names_the_registry_does_not_declare(django_assert_num_queries):
    user = EndUserFactory()
    with django_assert_num_queries(0):
        refresh_expired(["sessions"], EndUser.objects.filter(pk=user.pk), NOW)
    refresh_expired(["sessions", "signals_30d"], EndUser.objects.filter(pk=user.pk), NOW)
    assert list(ProfileFeatureValue.objects.values_list("name", flat=True)) == ["signals_30d"]


def test_bucket_criteria_on_a_profile_feature_refresh_it_first_and_read_the_stored_value():
    from buckets.criteria import matching_users

    busy, quiet = EndUserFactory(), EndUserFactory()
    for _ in range(3):
        signal(busy, "tip.served", NOW - timedelta(hours=1))
    matched = matching_users({"profile": "tip_volume_30d", "op": "gte", "value": 2}, NOW)
    assert list(matched.values_list("pk", flat=True)) == [busy.pk]
    assert ProfileFeatureValue.objects.get(user=quiet, name="tip_volume_30d").value == 0
