"""`/api/v1/buckets`: define, replace, disable, list, read and preview, with bad input and scopes."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from buckets.criteria import fingerprint
from buckets.models import Bucket
from tests.factories import EndUserFactory, SignalFactory

pytestmark = pytest.mark.django_db
OPENED = {"event": "app_opened", "check": "exists"}
DORMANT = {"all": [OPENED, {"event": "app_opened", "check": "not_exists", "within": "7d"}]}
DEFINITION = {"slug": "went-dormant", "name": "Went dormant", "criteria": DORMANT}


def test_an_admin_key_defines_a_bucket_and_its_actor_and_fingerprint_are_recorded(api_as):
    response = api_as("admin").post_json("/api/v1/buckets", DEFINITION)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["slug"] == "went-dormant" and body["kind"] == "dynamic" and body["enabled"] is True
    assert body["created_by"] == body["updated_by"] == "api_key:test key"
    assert body["criteria_fingerprint"] == fingerprint(DORMANT) != ""
    assert Bucket.objects.get().criteria == DORMANT


def test_the_fingerprint_ignores_key_order():
    assert fingerprint({"event": "a", "check": "exists"}) == fingerprint({"check": "exists", "event": "a"})
    assert fingerprint({"event": "a", "check": "exists"}) != fingerprint({"event": "b", "check": "exists"})


def test_invalid_criteria_answer_400_with_every_error_at_its_path(api):
    criteria = {"all": [OPENED, {"event": "x", "check": "exists", "within": "7 days"}, {"any": []}]}
    response = api.post_json("/api/v1/buckets", {**DEFINITION, "criteria": criteria})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert {d["field"] for d in error["details"]} == {"criteria.all[1].within", "criteria.all[2].any"}
    assert not Bucket.objects.exists()


@pytest.mark.parametrize("body, field", [
    pytest.param({}, "slug", id="an empty body"),
    pytest.param({**DEFINITION, "slug": "preview"}, "slug", id="a reserved slug"),
    pytest.param({**DEFINITION, "slug": "Has Spaces"}, "slug", id="a slug with spaces"),
    pytest.param({**DEFINITION, "slug": "x" * 101}, "slug", id="an oversized slug"),
    pytest.param({**DEFINITION, "slug": 7}, "slug", id="a slug that is a number"),
    pytest.param({**DEFINITION, "name": ""}, "name", id="an empty name"),
    pytest.param({**DEFINITION, "name": "n" * 201}, "name", id="an oversized name"),
    pytest.param({**DEFINITION, "description": 5}, "description", id="a description that is not text"),
    pytest.param({**DEFINITION, "kind": "smart"}, "kind", id="an unknown kind"),
    pytest.param({**DEFINITION, "enabled": "yes"}, "enabled", id="enabled that is not a boolean"),
    pytest.param({**DEFINITION, "criteria": None}, "criteria", id="a dynamic bucket without criteria"),
    pytest.param({**DEFINITION, "criteria": "everyone"}, "criteria", id="criteria that are a string"),
    pytest.param({**DEFINITION, "kind": "manual"}, "criteria", id="a manual bucket with criteria"),
    pytest.param({**DEFINITION, "owner": "me"}, "owner", id="an unknown field"),
    pytest.param({**DEFINITION, "criteria": {"not": OPENED}}, "criteria", id="negative criteria"),
])
def test_bad_definitions_answer_400_at_the_field(api, body, field):
    response = api.post_json("/api/v1/buckets", body)
    assert response.status_code == 400, response.content
    assert field in [d["field"] for d in response.json()["error"]["details"]]


@pytest.mark.parametrize("raw", ["[]", "null", "{", '"x"', '{"slug": NaN}'])
def test_malformed_bodies_answer_400(api, raw):
    assert api.post_json("/api/v1/buckets", raw).status_code == 400


def test_a_taken_slug_answers_409(api):
    assert api.post_json("/api/v1/buckets", DEFINITION).status_code == 201
    response = api.post_json("/api/v1/buckets", DEFINITION)
    assert response.status_code == 409
    assert response.json()["error"]["details"] == [{"field": "slug", "message": "is taken"}]


def test_a_manual_bucket_needs_no_criteria(api):
    response = api.post_json("/api/v1/buckets", {"slug": "beta", "name": "Beta", "kind": "manual"})
    assert response.status_code == 201
    assert response.json()["criteria"] is None and response.json()["criteria_fingerprint"] == ""


def _put(client, slug, body):
    return client.generic("PUT", f"/api/v1/buckets/{slug}", json.dumps(body),
                          content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {client.raw_key}")


def test_put_replaces_the_definition_and_records_who_changed_it(api, make_key):
    api.post_json("/api/v1/buckets", DEFINITION)
    from tests.conftest import ApiClient

    other = ApiClient(make_key("admin", name="ops"))
    response = _put(other, "went-dormant", {"name": "Gone quiet", "criteria": OPENED, "enabled": False})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["name"] == "Gone quiet" and body["criteria"] == OPENED and body["enabled"] is False
    assert body["created_by"] == "api_key:test key" and body["updated_by"] == "api_key:ops"
    assert body["criteria_fingerprint"] == fingerprint(OPENED)


def test_put_cannot_change_the_slug_nor_accept_invalid_criteria(api):
    api.post_json("/api/v1/buckets", DEFINITION)
    renamed = _put(api, "went-dormant", {**DEFINITION, "slug": "other"})
    assert renamed.status_code == 400 and renamed.json()["error"]["details"][0]["field"] == "slug"
    broken = _put(api, "went-dormant", {"name": "x", "criteria": {"all": []}})
    assert broken.json()["error"]["details"] == [
        {"field": "criteria.all", "message": "an empty all is not allowed: give it at least one condition"}]
    assert Bucket.objects.get().criteria == DORMANT


def test_put_of_an_unknown_bucket_answers_404(api):
    assert _put(api, "nope", DEFINITION).status_code == 404


def test_put_refuses_a_cycle_through_another_bucket(api):
    api.post_json("/api/v1/buckets", {"slug": "a", "name": "A", "criteria": OPENED})
    api.post_json("/api/v1/buckets", {"slug": "b", "name": "B", "criteria": {"in_bucket": "a"}})
    response = _put(api, "a", {"name": "A", "criteria": {"in_bucket": "b"}})
    assert response.status_code == 400
    assert response.json()["error"]["details"][0]["field"] == "criteria.in_bucket"


def test_delete_disables_the_bucket_and_keeps_it(api):
    api.post_json("/api/v1/buckets", DEFINITION)
    response = api.delete_json("/api/v1/buckets/went-dormant")
    assert response.status_code == 200 and response.json()["enabled"] is False
    assert Bucket.objects.get().enabled is False


def test_a_read_key_lists_and_reads_buckets_page_by_page(api, api_as):
    for slug in ("c", "a", "b"):
        api.post_json("/api/v1/buckets", {"slug": slug, "name": slug, "criteria": OPENED})
    reader = api_as("read")
    first = reader.get_json("/api/v1/buckets?limit=2").json()
    assert [b["slug"] for b in first["items"]] == ["a", "b"] and first["next_cursor"]
    second = reader.get_json(f"/api/v1/buckets?limit=2&cursor={first['next_cursor']}").json()
    assert [b["slug"] for b in second["items"]] == ["c"] and second["next_cursor"] is None
    assert reader.get_json("/api/v1/buckets/b").json()["name"] == "b"
    assert reader.get_json("/api/v1/buckets/zzz").status_code == 404
    assert reader.get_json("/api/v1/buckets?limit=0").status_code == 400
    assert reader.get_json("/api/v1/buckets?cursor=forged").status_code == 400


@pytest.mark.parametrize("method, path, body", [
    ("post", "/api/v1/buckets", DEFINITION),
    ("put", "/api/v1/buckets/went-dormant", DEFINITION),
    ("delete", "/api/v1/buckets/went-dormant", None),
])
def test_changing_buckets_needs_the_admin_scope(api, api_as, method, path, body):
    api.post_json("/api/v1/buckets", {**DEFINITION, "slug": "went-dormant"})
    for scopes in ("read", "ingest", "send", "ingest,read,send"):
        client = api_as(scopes)
        if method == "post":
            response = client.post_json(path, body)
        elif method == "put":
            response = _put(client, "went-dormant", body)
        else:
            response = client.delete_json(path)
        assert response.status_code == 403, scopes
    assert Bucket.objects.get().enabled is True


def test_reading_buckets_needs_the_read_scope(api_as, client):
    assert api_as("ingest").get_json("/api/v1/buckets").status_code == 403
    assert api_as("send").get_json("/api/v1/buckets").status_code == 403
    assert client.get("/api/v1/buckets").status_code == 401
    assert api_as("read").get_json("/api/v1/buckets").status_code == 200


def test_the_preview_counts_and_samples_users_matching_now_and_saves_nothing(api_as):
    now = timezone.now()
    users = [EndUserFactory(external_id=f"u{n:02d}") for n in range(25)]
    for user in users[:22]:
        SignalFactory(user=user, name="app_opened", occurred_at=now - timedelta(days=10))
    SignalFactory(user=users[0], name="app_opened", occurred_at=now - timedelta(days=1))
    response = api_as("read").post_json("/api/v1/buckets/preview", {"criteria": DORMANT})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["count"] == 21
    assert body["sample"] == [f"ext:u{n:02d}" for n in range(1, 21)]
    assert not Bucket.objects.exists()


def test_a_preview_nobody_matches_counts_zero_with_an_empty_sample(api_as):
    EndUserFactory(external_id="u1")
    response = api_as("read").post_json("/api/v1/buckets/preview", {"criteria": OPENED})
    assert response.status_code == 200, response.content
    assert response.json() == {"count": 0, "sample": []}


@pytest.mark.parametrize("body, field", [
    pytest.param({}, "criteria", id="no criteria"),
    pytest.param({"criteria": {"any": []}}, "criteria.any", id="an empty any"),
    pytest.param({"criteria": OPENED, "slug": "x"}, "slug", id="an unknown field"),
    pytest.param({"criteria": {"event": "x", "check": "not_exists"}}, "criteria", id="negative criteria"),
])
def test_the_preview_answers_the_same_validation_errors(api_as, body, field):
    response = api_as("read").post_json("/api/v1/buckets/preview", body)
    assert response.status_code == 400
    assert field in [d["field"] for d in response.json()["error"]["details"]]


def test_the_preview_needs_the_read_scope(api_as):
    assert api_as("ingest").post_json("/api/v1/buckets/preview", {"criteria": OPENED}).status_code == 403


def test_every_bucket_route_is_in_the_openapi_document_with_its_scopes(client):
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    assert paths["/api/v1/buckets"]["post"]["x-pulse-scope"] == "admin"
    assert paths["/api/v1/buckets"]["get"]["x-pulse-scope"] == "read"
    assert paths["/api/v1/buckets/preview"]["post"]["x-pulse-scope"] == "read"
    assert {m: op["x-pulse-scope"] for m, op in paths["/api/v1/buckets/{slug}"].items()} == {
        "get": "read", "put": "admin", "delete": "admin"}


@pytest.mark.parametrize("criteria, field", [
    ({"property": "a\u0000b", "op": "exists"}, "criteria.property"),
    ({"event": "x", "check": "exists", "where": [{"property": "p\u0000", "op": "exists"}]},
     "criteria.where[0].property"),
    ({"event": "x\u0000", "check": "exists"}, "criteria.event"),
    ({"tenant": "\ud800"}, "criteria.tenant"),
])
def test_nul_and_lone_surrogates_in_criteria_are_400s_at_their_path(api_as, criteria, field):
    preview = api_as("read").post_json("/api/v1/buckets/preview", {"criteria": criteria})
    assert preview.status_code == 400
    assert preview.json()["error"]["details"][0]["field"] == field
    saved = api_as("admin").post_json("/api/v1/buckets", {"slug": "nul", "name": "x", "criteria": criteria})
    assert saved.status_code == 400


@pytest.mark.parametrize("field", ["name", "description"])
def test_a_bucket_name_or_description_with_a_nul_is_refused(api_as, field):
    body = {"slug": "named", "name": "ok", "criteria": DORMANT, field: "a\u0000b"}
    response = api_as("admin").post_json("/api/v1/buckets", body)
    assert response.status_code == 400
    assert response.json()["error"]["details"][0]["field"] == field
