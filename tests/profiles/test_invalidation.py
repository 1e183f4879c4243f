"""Event-driven invalidation: exactly the declared features of exactly the affected users, and
a computation that began before an invalidation never writes its older value over it."""

from datetime import timedelta

import pytest

from engagement.models import Signal
from engagement.pipeline import HandlerContext, process_signals
from profiles import registry, store
from profiles.invalidation import drop_invalidated_values
from profiles.models import ProfileFeatureValue
from profiles.reads import get_profile, peek_profile
from profiles.refresh import refresh_chunk
from tests.factories import EndUserFactory, SignalFactory

from .helpers import NOW, feedback, signal

pytestmark = pytest.mark.django_db
FEEDBACK_FEATURES = {"completion_rate_30d", "dismiss_rate_30d", "mean_dwell_ms_30d", "preferred_hour"}
ANY_FEATURES = {name for name, f in registry.features().items() if "*" in f.invalidated_by}


def computed_names(user):
    return set(ProfileFeatureValue.objects.filter(user=user, computed_at__isnull=False)
               .values_list("name", flat=True))


def test_a_feedback_signal_drops_the_four_feedback_features_and_the_any_signal_ones_of_its_user_only():
    user, bystander = EndUserFactory(), EndUserFactory()
    get_profile(user, NOW)
    get_profile(bystander, NOW)
    SignalFactory(user=user, name="tip.feedback", occurred_at=NOW, properties={"action": "completed"})
    process_signals(now=NOW)
    dropped = set(registry.features()) - computed_names(user)
    assert dropped == FEEDBACK_FEATURES | ANY_FEATURES
    assert "tip_volume_30d" not in dropped and "lifecycle_state" not in dropped
    assert computed_names(bystander) == set(registry.features())
    row = ProfileFeatureValue.objects.get(user=user, name="completion_rate_30d")
    assert (row.value, row.computed_at, row.invalidated_at, row.generation) == (None, None, NOW, 1)


def test_a_served_signal_drops_tip_volume_but_not_the_feedback_features():
    user = EndUserFactory()
    get_profile(user, NOW)
    drop_invalidated_values([signal(user, "tip.served", NOW)], HandlerContext(now=NOW))
    assert set(registry.features()) - computed_names(user) == {"tip_volume_30d"} | ANY_FEATURES


def test_a_lifecycle_change_drops_only_lifecycle_state_and_the_any_signal_features():
    user = EndUserFactory()
    get_profile(user, NOW)
    changed = signal(user, "$lifecycle.changed", NOW, source=Signal.Source.SYSTEM)
    drop_invalidated_values([changed], HandlerContext(now=NOW))
    assert set(registry.features()) - computed_names(user) == {"lifecycle_state"} | ANY_FEATURES


def test_the_next_read_recomputes_an_invalidated_value_at_once_instead_of_waiting_for_the_ttl():
    user = EndUserFactory()
    assert get_profile(user, NOW)["completion_rate_30d"].value is None
    SignalFactory(user=user, name="tip.feedback", occurred_at=NOW, properties={"action": "completed"})
    process_signals(now=NOW)
    later = NOW + timedelta(minutes=1)
    assert peek_profile(user, later)["completion_rate_30d"].stale is True
    assert get_profile(user, later)["completion_rate_30d"].value == 1


def test_a_computation_that_started_before_an_invalidation_does_not_overwrite_it():
    user = EndUserFactory()
    get_profile(user, NOW)
    feature = registry.get("completion_rate_30d")
    # 1. A computation reads the stored state and the signals (no feedback yet) ...
    seen = store.read([user.pk], [feature.name])
    old_answer = feature.group.run([user.pk], NOW + timedelta(hours=2))
    # 2. ... feedback arrives and its drain invalidates the pair ...
    drop_invalidated_values([feedback(user, NOW + timedelta(hours=2), "completed")],
                            HandlerContext(now=NOW + timedelta(hours=2)))
    # 3. ... then the computation writes what it read: refused.
    value = old_answer[feature.name].get(user.pk)
    written = store.write([store.Computed(user.pk, feature.name, value, None, NOW + timedelta(hours=2),
                                          seen[(user.pk, feature.name)].generation)])
    assert written == set()
    row = ProfileFeatureValue.objects.get(user=user, name=feature.name)
    assert row.computed_at is None and row.generation == 1
    assert get_profile(user, NOW + timedelta(hours=3))["completion_rate_30d"].value == 1


def test_a_pair_never_stored_is_protected_too_because_invalidation_leaves_a_marker():
    user = EndUserFactory()
    seen = store.read([user.pk])  # nothing stored: generation 0
    drop_invalidated_values([signal(user, "tip.served", NOW)], HandlerContext(now=NOW))
    written = store.write([store.Computed(user.pk, "tip_volume_30d", 0.0, None, NOW,
                                          seen.get((user.pk, "tip_volume_30d"), store.ABSENT).generation)])
    assert written == set()


def test_an_invalidation_during_get_profile_is_not_overwritten_and_the_value_is_recomputed():
    """The interleaving inside get_profile: the first computation is overtaken by an
    invalidation (injected between its read and its write); its write is refused and the
    retry reads the new signal."""
    user = EndUserFactory()
    group = registry.get("tip_volume_30d").group
    original = group.compute
    calls = []

    def overtaken(user_ids, now):
        answer = original(user_ids, now)
        if not calls:
            drop_invalidated_values([signal(user, "tip.served", now - timedelta(minutes=1))],
                                    HandlerContext(now=now))
        calls.append(answer["tip_volume_30d"][user.pk])
        return answer

    object.__setattr__(group, "compute", overtaken)
    try:
        profile = get_profile(user, NOW)
    finally:
        object.__setattr__(group, "compute", original)
    assert calls == [0, 1]
    assert profile["tip_volume_30d"].value == 1 and profile["tip_volume_30d"].stale is False
    assert ProfileFeatureValue.objects.get(user=user, name="tip_volume_30d").value == 1


def test_a_set_based_refresh_reports_pairs_refused_by_an_invalidation():
    users = [EndUserFactory() for _ in range(3)]
    features = [registry.get("tip_volume_30d")]
    ids = [u.pk for u in users]
    seen = store.read(ids)
    drop_invalidated_values([signal(users[1], "tip.served", NOW)], HandlerContext(now=NOW))
    result = refresh_chunk(ids, features, NOW, stored=seen)
    assert (result.computed, result.written, result.refused) == (3, 2, 1)
    assert (users[1].pk, "tip_volume_30d") not in result.written_pairs


def test_the_handler_issues_one_statement_for_a_batch_of_many_users(django_assert_num_queries):
    users = [EndUserFactory() for _ in range(20)]
    batch = [signal(u, "tip.feedback", NOW) for u in users]
    with django_assert_num_queries(1):
        drop_invalidated_values(batch, HandlerContext(now=NOW))
    assert ProfileFeatureValue.objects.count() == 20 * len(FEEDBACK_FEATURES | ANY_FEATURES)


def test_a_replay_invalidates_only_for_signals_that_had_failed():
    user = EndUserFactory()
    get_profile(user, NOW)
    processed = signal(user, "tip.served", NOW)
    drop_invalidated_values([processed], HandlerContext(now=NOW, replay=True))
    assert computed_names(user) == set(registry.features())
    Signal.objects.filter(pk=processed.pk).update(failed_at=NOW, error="x")
    processed.refresh_from_db()
    drop_invalidated_values([processed], HandlerContext(now=NOW, replay=True))
    assert "tip_volume_30d" not in computed_names(user)


def test_an_invalidation_landing_while_a_set_based_rebuild_runs_is_not_overwritten(monkeypatch):
    """The interleaving inside the set-based rebuild: its rows are staged (with the
    generations of the same snapshot), then an invalidation lands before they are written."""
    from profiles import set_refresh

    users = [EndUserFactory(), EndUserFactory()]
    get_profile(users[0], NOW)
    original = set_refresh.write_staged

    def overtaken(first_id, last_id, now):
        if first_id == users[0].pk:
            drop_invalidated_values([signal(users[0], "tip.served", now)], HandlerContext(now=now))
        return original(first_id, last_id, now)

    monkeypatch.setattr(set_refresh, "write_staged", overtaken)
    later = NOW + timedelta(hours=2)
    result = registry_rebuild(later)
    refused = {"tip_volume_30d"} | ANY_FEATURES
    assert result.refused == len(refused)
    assert result.written == 2 * len(registry.features()) - len(refused)
    assert set(registry.features()) - computed_names(users[0]) == refused
    row = ProfileFeatureValue.objects.get(user=users[0], name="tip_volume_30d")
    assert (row.computed_at, row.generation) == (None, 1)
    assert get_profile(users[0], later)["tip_volume_30d"].value == 1


def registry_rebuild(now):
    from engagement.models import EndUser
    from profiles.refresh import rebuild

    return rebuild(EndUser.objects.all(), now, batch_size=1)


@pytest.mark.parametrize("stored_before", [True, False], ids=["stored pairs", "pairs never stored"])
def test_an_invalidation_landing_after_the_snapshot_and_before_the_shared_pass_is_not_overwritten(
        monkeypatch, stored_before):
    """The shared pass over the window reads the signals after the snapshot of the stored
    generations; an invalidation in between (its signal already in what the pass reads) must
    still be refused, whether the pair was stored before (the conditional write) or never
    (the plain INSERT meets the invalidation's marker and falls back to the conditional write)."""
    from profiles import set_refresh

    users = [EndUserFactory(), EndUserFactory()]
    if stored_before:
        get_profile(users[0], NOW)
    original = set_refresh.stage_shared
    later = NOW + timedelta(hours=2)

    def overtaken(relation, users_in_range, now, result):
        drop_invalidated_values([signal(users[0], "tip.served", now)], HandlerContext(now=now))
        return original(relation, users_in_range, now, result)

    monkeypatch.setattr(set_refresh, "stage_shared", overtaken)
    result = registry_rebuild(later)
    refused = {"tip_volume_30d"} | ANY_FEATURES
    assert result.refused == len(refused)
    assert set(registry.features()) - computed_names(users[0]) == refused
    assert computed_names(users[1]) == set(registry.features())
    row = ProfileFeatureValue.objects.get(user=users[0], name="tip_volume_30d")
    assert (row.computed_at, row.value) == (None, None)
    assert get_profile(users[0], later)["tip_volume_30d"].value == 1


def test_a_user_erased_while_a_set_based_rebuild_runs_gets_no_values_back(monkeypatch):
    """The stage is computed before the erasure, the write comes after it: the erase handler
    has deleted the user's values, and the rebuild must not write them back."""
    from engagement.erase import erase_user
    from profiles import set_refresh

    users = [EndUserFactory(), EndUserFactory()]
    get_profile(users[0], NOW)
    original = set_refresh.write_staged

    def erased_meanwhile(first_id, last_id, now):
        if first_id == users[0].pk:
            erase_user(users[0], erased_by="staff:test", now=now)
        return original(first_id, last_id, now)

    monkeypatch.setattr(set_refresh, "write_staged", erased_meanwhile)
    registry_rebuild(NOW + timedelta(hours=2))
    assert not ProfileFeatureValue.objects.filter(user=users[0]).exists()
    assert computed_names(users[1]) == set(registry.features())
