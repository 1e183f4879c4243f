import pytest

from engagement.models import EndUser, Signal

pytestmark = pytest.mark.django_db


def test_identify_creates_then_updates_the_user(api):
    created = api.post_json("/api/v1/users", {"id": "u1", "email": "U1@X.io", "timezone": "Europe/Paris",
                                              "locale": "fr-FR", "properties": {"plan": "free"}})
    assert created.status_code == 201
    body = created.json()
    assert (body["external_id"], body["email"], body["timezone"], body["locale"]) == (
        "u1", "u1@x.io", "Europe/Paris", "fr-FR")
    updated = api.post_json("/api/v1/users", {"email": "u1@x.io", "reengagement_opt_out": True})
    assert updated.status_code == 200
    assert updated.json()["id"] == body["id"] and updated.json()["reengagement_opt_out"] is True


def test_identify_merges_and_reports_the_merged_users(api):
    anon = api.post_json("/api/v1/users", {"anonymous_id": "a1", "properties": {"utm": "ad"}}).json()
    api.post_json("/api/v1/users", {"id": "u1"})
    merged = api.post_json("/api/v1/users", {"id": "u1", "anonymous_id": "a1"})
    assert merged.status_code == 200
    assert merged.json()["merged_user_ids"] == [anon["internal_id"]]
    assert merged.json()["properties"] == {"utm": "ad"}
    assert api.get_json("/api/v1/users/anon:a1").json()["external_id"] == "u1"
    identify = Signal.objects.filter(name="$identify").order_by("-pk").first()
    assert identify.properties["merged_user_ids"] == [anon["internal_id"]]


@pytest.mark.parametrize("body", [
    {}, {"properties": {"a": 1}}, {"id": 7}, {"id": "u", "nickname": "x"},
    {"id": "u", "timezone": "Mars/Olympus"}, {"id": "u", "email": "nope"},
    {"id": "u", "tenants": "acme"}, {"id": "u", "tenants": [{"name": "no key"}]},
    {"id": "u", "tenants": [{"key": "k", "joined_at": "soon"}]}, {"id": "u", "properties": "x"},
    {"id": "u", "reengagement_opt_out": "yes"}, {"id": "x" * 256},
])
def test_identify_refuses_invalid_bodies_and_names_the_fields(api, body):
    response = api.post_json("/api/v1/users", body)
    assert response.status_code == 400
    assert response.json()["error"]["details"]
    assert not EndUser.objects.exists()


@pytest.mark.parametrize("ref", ["x" * 400, "email:", "anon:%00"])
def test_hostile_user_refs_never_cause_a_500(api, ref):
    assert api.get_json(f"/api/v1/users/{ref}").status_code in (400, 404)
