import pytest

from engagement.erase import erase_user, merged_into
from engagement.identity import Identifiers, find_user
from engagement.models import EndUser, Erasure, Membership, Signal, UserAlias
from tests.factories import EndUserFactory, MembershipFactory, SignalFactory

pytestmark = pytest.mark.django_db


def test_erasing_removes_personal_data_and_keeps_counts(api):
    user = EndUserFactory(
        external_id="u1",
        anonymous_id="a1",
        email="u1@x.io",
        properties={"name": "Ada"},
        timezone="Europe/Paris",
    )
    MembershipFactory(user=user)
    SignalFactory.create_batch(2, user=user, properties={"query": "ada's secret"}, context={"ip": "1.2.3.4"},
                               error="ValueError: bad query 'ada's secret'")
    UserAlias.objects.create(user=user, kind="email", value="old@x.io", created_at=user.first_seen_at)

    response = api.delete_json("/api/v1/users/u1")

    assert response.status_code == 200
    assert response.json()["counts"]["signals_scrubbed"] == 2
    user.refresh_from_db()
    assert (user.external_id, user.anonymous_id, user.email, user.properties, user.timezone) == (
        None,
        None,
        None,
        {},
        "",
    )
    assert user.deleted_at is not None
    assert Signal.objects.filter(user=user).count() == 2
    assert not Signal.objects.filter(user=user).exclude(properties={}).exists()
    assert not Signal.objects.filter(user=user).exclude(context={}).exists()
    assert not Signal.objects.filter(user=user).exclude(error="").exists()
    assert Membership.objects.filter(user=user).count() == 1
    assert not UserAlias.objects.filter(user=user).exists()
    erasure = Erasure.objects.get()
    assert erasure.user_id_erased == user.pk and erasure.erased_by.startswith("api_key:")


def test_an_erased_user_no_longer_resolves_and_can_sign_up_again(api):
    EndUserFactory(external_id="u1", email="u1@x.io")
    api.delete_json("/api/v1/users/u1")
    assert find_user(Identifiers(external_id="u1")) is None
    assert api.get_json("/api/v1/users/u1").status_code == 404
    assert api.post_json("/api/v1/users", {"id": "u1", "email": "u1@x.io"}).status_code == 201
    assert EndUser.objects.count() == 2


def test_erase_runs_every_registered_erase_handler(api, settings):
    settings.PULSE_USER_ERASE_HANDLERS = [
        *settings.PULSE_USER_ERASE_HANDLERS,
        "tests.engagement.test_erase.extra_handler",
    ]
    EndUserFactory(external_id="u1")
    response = api.delete_json("/api/v1/users/u1")
    assert response.json()["counts"]["extra"] == 7


def extra_handler(erasure):
    return {"extra": 7}


SEEN = []


def recording_handler(erasure):
    SEEN.append((erasure.user.pk, erasure.merged_ids, erasure.user_ids, erasure.now))
    return None


def test_erase_handlers_receive_the_users_merged_into_the_erased_one(settings, now):
    settings.PULSE_USER_ERASE_HANDLERS = ["tests.engagement.test_erase.recording_handler"]
    SEEN.clear()
    survivor = EndUserFactory()
    first, second = EndUserFactory(merged_into=survivor), EndUserFactory(merged_into=survivor)
    EndUserFactory()  # a stranger
    erase_user(survivor, erased_by="test", now=now)
    assert SEEN == [(survivor.pk, (first.pk, second.pk), (survivor.pk, first.pk, second.pk), now)]


def test_users_merged_through_an_earlier_merge_are_found_too(now):
    survivor = EndUserFactory()
    middle = EndUserFactory(merged_into=survivor)
    oldest = EndUserFactory(merged_into=middle)  # left from before merges re-pointed their losers
    assert merged_into(survivor.pk) == (middle.pk, oldest.pk)
    assert merged_into(oldest.pk) == ()


def test_a_merge_cycle_in_old_rows_does_not_loop(now):
    one, two = EndUserFactory(), EndUserFactory()
    EndUser.objects.filter(pk=one.pk).update(merged_into=two)
    EndUser.objects.filter(pk=two.pk).update(merged_into=one)
    assert merged_into(one.pk) == (two.pk,)


def test_signals_and_aliases_left_on_a_merged_user_are_erased_with_the_survivor(api, now):
    survivor = EndUserFactory(external_id="u1")
    loser = EndUserFactory(external_id=None, merged_into=survivor, deleted_at=now)
    SignalFactory(user=loser, properties={"query": "ada's secret"}, context={"ip": "1.2.3.4"},
                  idempotency_key="k-1")
    SignalFactory(user=survivor, properties={"query": "other"})
    UserAlias.objects.create(user=loser, kind="email", value="old@x.io", created_at=now)
    MembershipFactory(user=loser)
    stranger_signal = SignalFactory(properties={"keep": "me"})

    counts = api.delete_json("/api/v1/users/u1").json()["counts"]

    assert counts["signals_scrubbed"] == 2 and counts["memberships_kept"] == 1
    assert counts["aliases_removed"] == 1
    scrubbed = Signal.objects.get(user=loser)
    assert (scrubbed.properties, scrubbed.context, scrubbed.idempotency_key) == ({}, {}, None)
    assert not UserAlias.objects.filter(user=loser).exists()
    stranger_signal.refresh_from_db()
    assert stranger_signal.properties == {"keep": "me"}


def test_erasing_twice_changes_nothing_more(now):
    user = EndUserFactory()
    SignalFactory(user=user, properties={"a": 1})
    erase_user(user, erased_by="test", now=now)
    before = list(Signal.objects.values())
    second = erase_user(user, erased_by="test", now=now)
    assert list(Signal.objects.values()) == before
    assert second.counts["aliases_removed"] == 0


def test_erasing_a_survivor_scrubs_the_users_merged_into_it(api, now):
    from engagement.identity import resolve_user

    loser = EndUserFactory(external_id=None, anonymous_id="a1", email="old@x.io", properties={"name": "Ada"})
    EndUserFactory(external_id="u1", email=None)
    resolve_user(Identifiers(external_id="u1", anonymous_id="a1"), now=now)
    loser.refresh_from_db()
    assert (loser.properties, loser.email, loser.anonymous_id) == ({}, None, None)
    response = api.delete_json("/api/v1/users/u1")
    assert response.json()["counts"]["merged_users_scrubbed"] == 1
    loser.refresh_from_db()
    assert loser.properties == {} and loser.deleted_at is not None


def test_a_chain_of_merges_points_every_loser_at_the_last_survivor(now):
    from engagement.identity import resolve_user

    first = EndUserFactory(external_id=None, anonymous_id="a1", email=None)
    middle = EndUserFactory(
        external_id=None, anonymous_id=None, email="m@x.io", first_seen_at=first.first_seen_at
    )
    resolve_user(Identifiers(anonymous_id="a1", email="m@x.io"), now=now)
    last = EndUserFactory(external_id="u9", email=None)
    resolve_user(Identifiers(external_id="u9", email="m@x.io"), now=now)
    merged_into = dict(EndUser.objects.filter(deleted_at__isnull=False).values_list("pk", "merged_into"))
    assert set(merged_into.values()) == {last.pk}
    assert set(merged_into) == {first.pk, middle.pk}
