from datetime import timedelta

import pytest

from engagement.identity import (
    Identifiers,
    IdentityConflict,
    apply_properties_patch,
    find_user,
    resolve_user,
    resolve_users,
)
from engagement.models import EndUser, Membership, Signal, UserAlias
from engagement.people import group
from tests.factories import EndUserFactory, MembershipFactory, SignalFactory, TenantFactory

pytestmark = pytest.mark.django_db


def test_resolving_a_new_identifier_creates_one_user(now):
    first = resolve_user(Identifiers(external_id="u1"), now=now)
    again = resolve_user(Identifiers(external_id="u1"), now=now)
    assert first.created and not again.created
    assert first.user.pk == again.user.pk
    assert EndUser.objects.count() == 1


def test_email_is_normalized_to_lowercase(now):
    user = resolve_user(Identifiers(email="  Ada@Example.COM "), now=now).user
    assert user.email == "ada@example.com"
    assert resolve_user(Identifiers(email="ADA@example.com"), now=now).user.pk == user.pk


def test_missing_identifiers_are_filled_in(now):
    user = resolve_user(Identifiers(anonymous_id="a1"), now=now).user
    same = resolve_user(Identifiers(anonymous_id="a1", external_id="u1", email="u1@x.io"), now=now)
    assert same.user.pk == user.pk
    user.refresh_from_db()
    assert (user.external_id, user.email) == ("u1", "u1@x.io")
    assert set(same.changed_fields) == {"external_id", "email"}


def test_a_second_anonymous_id_becomes_an_alias_of_the_user(now):
    user = resolve_user(Identifiers(external_id="u1", anonymous_id="a1"), now=now).user
    resolve_user(Identifiers(external_id="u1", anonymous_id="a2"), now=now)
    assert find_user(Identifiers(anonymous_id="a2")).pk == user.pk
    assert find_user(Identifiers(anonymous_id="a1")).pk == user.pk


def test_merge_survivor_is_the_user_with_an_external_id(now):
    anon = EndUserFactory(
        external_id=None, anonymous_id="a1", email=None, first_seen_at=now - timedelta(days=10)
    )
    known = EndUserFactory(external_id="u1", email=None, first_seen_at=now)
    result = resolve_user(Identifiers(external_id="u1", anonymous_id="a1"), now=now)
    assert result.user.pk == known.pk
    assert result.merged_ids == [anon.pk]
    anon.refresh_from_db()
    assert anon.deleted_at is not None and anon.merged_into_id == known.pk
    result.user.refresh_from_db()
    assert result.user.first_seen_at == now - timedelta(days=10)


def test_merge_survivor_without_external_ids_is_the_oldest_first_seen(now):
    newer = EndUserFactory(external_id=None, anonymous_id="a1", email=None, first_seen_at=now)
    older = EndUserFactory(
        external_id=None, anonymous_id=None, email="o@x.io", first_seen_at=now - timedelta(days=1)
    )
    result = resolve_user(Identifiers(anonymous_id="a1", email="o@x.io"), now=now)
    assert result.user.pk == older.pk
    assert result.user.anonymous_id == "a1"
    assert EndUser.objects.get(pk=newer.pk).deleted_at is not None


def test_merge_survivor_on_a_tie_is_the_lowest_id(now):
    first = EndUserFactory(external_id=None, anonymous_id="a1", email=None, first_seen_at=now)
    EndUserFactory(external_id=None, anonymous_id=None, email="t@x.io", first_seen_at=now)
    assert resolve_user(Identifiers(anonymous_id="a1", email="t@x.io"), now=now).user.pk == first.pk


def test_merge_layers_properties_loser_then_survivor_then_patch(now):
    EndUserFactory(
        external_id=None,
        anonymous_id="a1",
        email=None,
        properties={"plan": "free", "color": "red", "only_loser": 1},
    )
    EndUserFactory(external_id="u1", email=None, properties={"plan": "pro", "color": "blue"})
    result = resolve_user(
        Identifiers(external_id="u1", anonymous_id="a1"),
        now=now,
        properties={"color": "green", "only_loser": None},
    )
    assert result.user.properties == {"plan": "pro", "color": "green"}


def test_merge_ors_the_reengagement_opt_out(now):
    EndUserFactory(external_id=None, anonymous_id="a1", email=None, reengagement_opt_out=True)
    EndUserFactory(external_id="u1", email=None, reengagement_opt_out=False)
    user = resolve_user(Identifiers(external_id="u1", anonymous_id="a1"), now=now).user
    assert user.reengagement_opt_out is True


def test_merge_moves_signals_and_memberships_to_the_survivor(now):
    loser = EndUserFactory(external_id=None, anonymous_id="a1", email=None)
    survivor = EndUserFactory(external_id="u1", email=None)
    shared, only_loser = TenantFactory(), TenantFactory()
    MembershipFactory(user=survivor, tenant=shared, joined_at=now, role="")
    MembershipFactory(user=loser, tenant=shared, joined_at=now - timedelta(days=3), role="owner")
    MembershipFactory(user=loser, tenant=only_loser, joined_at=now - timedelta(days=1))
    SignalFactory.create_batch(3, user=loser)
    resolve_user(Identifiers(external_id="u1", anonymous_id="a1"), now=now)
    assert Signal.objects.filter(user=survivor).count() == 3
    memberships = {m.tenant_id: m for m in Membership.objects.filter(user=survivor)}
    assert set(memberships) == {shared.pk, only_loser.pk}
    assert memberships[shared.pk].joined_at == now - timedelta(days=3)
    assert memberships[shared.pk].role == "owner"
    assert not Membership.objects.filter(user=loser).exists()
    survivor.refresh_from_db()
    assert survivor.primary_tenant_id == shared.pk


def test_old_identifiers_of_a_merged_user_keep_resolving_to_the_survivor(now):
    EndUserFactory(external_id=None, anonymous_id="a1", email="old@x.io")
    survivor = EndUserFactory(external_id="u1", email="new@x.io")
    resolve_user(Identifiers(external_id="u1", anonymous_id="a1"), now=now)
    assert find_user(Identifiers(email="old@x.io")).pk == survivor.pk
    assert resolve_user(Identifiers(email="old@x.io"), now=now).user.pk == survivor.pk
    assert UserAlias.objects.filter(user=survivor, kind="email", value="old@x.io").exists()


def test_users_with_different_external_ids_are_never_merged(now):
    EndUserFactory(external_id="u1", email="a@x.io")
    EndUserFactory(external_id="u2", email="b@x.io")
    with pytest.raises(IdentityConflict):
        resolve_user(Identifiers(external_id="u1", email="b@x.io"), now=now)
    assert EndUser.objects.filter(deleted_at__isnull=True).count() == 2


def test_identify_with_conflicting_external_ids_answers_409(api):
    EndUserFactory(external_id="u1", email="a@x.io")
    EndUserFactory(external_id="u2", email="b@x.io")
    response = api.post_json("/api/v1/users", {"id": "u1", "email": "b@x.io"})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "identity_conflict"


def test_properties_patch_is_shallow_and_null_deletes():
    merged = apply_properties_patch({"a": 1, "b": {"x": 1}, "c": 3}, {"b": {"y": 2}, "c": None, "d": 4})
    assert merged == {"a": 1, "b": {"y": 2}, "d": 4}


def test_identify_patches_properties_and_appends_an_identify_signal(api):
    api.post_json("/api/v1/users", {"id": "u1", "properties": {"plan": "free", "seats": 3}})
    response = api.post_json("/api/v1/users", {"id": "u1", "properties": {"plan": "pro", "seats": None}})
    assert response.status_code == 200
    assert response.json()["properties"] == {"plan": "pro"}
    assert Signal.objects.filter(name="$identify", source="system").count() == 2


def test_identify_joins_tenants_and_the_oldest_membership_is_primary(api, now):
    response = api.post_json(
        "/api/v1/users",
        {
            "id": "u1",
            "tenants": [
                {"key": "acme", "name": "Acme", "joined_at": (now - timedelta(days=1)).isoformat()},
                {"key": "globex", "joined_at": (now - timedelta(days=5)).isoformat(), "role": "admin"},
            ],
        },
    )
    assert response.status_code == 201, response.content
    assert response.json()["primary_tenant"] == "globex"
    detail = api.get_json("/api/v1/users/u1").json()
    assert {m["tenant"] for m in detail["memberships"]} == {"acme", "globex"}


def test_primary_tenant_ties_go_to_the_lowest_membership_id(now):
    user = EndUserFactory()
    first = TenantFactory(key="zz")
    TenantFactory(key="aa")
    ids = Identifiers(external_id=user.external_id)
    group(ids, "zz", now=now, actor="api_key:test", joined_at=now)
    group(ids, "aa", now=now, actor="api_key:test", joined_at=now)
    user.refresh_from_db()
    assert user.primary_tenant_id == first.pk


def test_bulk_resolution_creates_known_and_new_users_in_few_queries(now, django_assert_max_num_queries):
    EndUserFactory.create_batch(5, anonymous_id=None)
    existing = [Identifiers(external_id=u.external_id) for u in EndUser.objects.all()]
    new = [Identifiers(external_id=f"new-{i}") for i in range(200)]
    with django_assert_max_num_queries(6):
        resolved = resolve_users(existing + new, now=now)
    assert len(resolved) == 205
    assert EndUser.objects.count() == 205


def test_bulk_resolution_merges_like_single_resolution(now):
    anon = EndUserFactory(external_id=None, anonymous_id="a1", email=None)
    known = EndUserFactory(external_id="u1", email=None)
    resolved = resolve_users(
        [Identifiers(external_id="u1", anonymous_id="a1"), Identifiers(anonymous_id="a1")], now=now
    )
    assert {u.pk for u in resolved.values()} == {known.pk}
    assert EndUser.objects.get(pk=anon.pk).deleted_at is not None


def test_bulk_resolution_of_overlapping_new_identities_creates_one_user(now):
    resolved = resolve_users(
        [
            Identifiers(external_id="n1"),
            Identifiers(external_id="n1", email="n1@x.io"),
            Identifiers(email="n1@x.io"),
        ],
        now=now,
    )
    assert len({u.pk for u in resolved.values()}) == 1
    assert EndUser.objects.get().email == "n1@x.io"


def test_bulk_resolution_fills_identifiers_of_known_users_in_few_queries(now, django_assert_max_num_queries):
    users = EndUserFactory.create_batch(300, email=None, anonymous_id=None)
    batch = [Identifiers(external_id=u.external_id, email=f"{u.external_id}@x.io") for u in users]
    batch[0] = Identifiers(external_id=users[0].external_id, anonymous_id="a-0")
    with django_assert_max_num_queries(10):
        resolved = resolve_users(batch, now=now)
    assert {u.pk for u in resolved.values()} == {u.pk for u in users}
    assert EndUser.objects.filter(email__endswith="@x.io").count() == 299
    assert EndUser.objects.get(pk=users[0].pk).anonymous_id == "a-0"


def test_bulk_fill_of_a_second_anonymous_id_adds_an_alias(now):
    user = EndUserFactory(anonymous_id="phone")
    resolve_users([Identifiers(external_id=user.external_id, anonymous_id="laptop")], now=now)
    assert find_user(Identifiers(anonymous_id="laptop")).pk == user.pk
    assert find_user(Identifiers(anonymous_id="phone")).pk == user.pk


def test_bulk_fill_never_gives_a_user_a_second_external_id(now):
    user = EndUserFactory(external_id="u1", email="u1@x.io")
    conflicts = {}
    resolved = resolve_users([Identifiers(external_id="u2", email="u1@x.io")], now=now, conflicts=conflicts)
    assert resolved == {} and len(conflicts) == 1
    assert EndUser.objects.get(pk=user.pk).external_id == "u1"


def test_a_full_batch_naming_two_thousand_identifiers_resolves(api):
    body = {"signals": [{"user": {"id": f"u{i}", "email": f"u{i}@x.io"}, "name": "e"} for i in range(1000)]}
    assert api.post_json("/api/v1/signals", body).json()["accepted"] == 1000
    assert api.post_json("/api/v1/signals", body).json()["accepted"] == 1000
    assert EndUser.objects.count() == 1000
