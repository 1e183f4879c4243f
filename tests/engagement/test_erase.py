import pytest

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
    SignalFactory.create_batch(2, user=user, properties={"query": "ada's secret"}, context={"ip": "1.2.3.4"})
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


def extra_handler(user, now):
    return {"extra": 7}


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
