"""Authentication, scopes, statuses and the OpenAPI document."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import URLPattern, URLResolver, get_resolver

from engagement.keys import authenticate, clear_cache
from engagement.models import ApiKey, EndUser
from tests.conftest import ApiClient
from tests.factories import EndUserFactory

pytestmark = pytest.mark.django_db


def test_a_missing_key_answers_401(client):
    response = client.post("/api/v1/signals", "{}", content_type="application/json")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize("header", ["Bearer nope", "Bearer pk_deadbeef_xyz", "Basic abc", "Bearer "])
def test_a_wrong_key_answers_401(client, header):
    response = client.get("/api/v1/users/u1", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401


def test_a_key_without_the_scope_answers_403(api_as):
    reader = api_as("read")
    response = reader.post_json("/api/v1/signals", {"user": {"id": "u"}, "name": "x"})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"


def test_the_admin_scope_implies_the_others(api_as):
    admin = api_as("admin")
    assert admin.post_json("/api/v1/signals", {"user": {"id": "u"}, "name": "x"}).status_code == 202
    assert admin.get_json("/api/v1/users/u").status_code == 200


def test_the_x_api_key_header_also_authenticates(make_key, client):
    raw = make_key("read")
    EndUserFactory(external_id="u1")
    assert client.get("/api/v1/users/u1", HTTP_X_API_KEY=raw).status_code == 200


def test_an_unknown_user_answers_404(api):
    response = api.get_json("/api/v1/users/email:nobody@x.io")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_user_refs_accept_every_prefix(api):
    user = EndUserFactory(external_id="u1", anonymous_id="a1", email="u1@x.io")
    for ref in ("u1", "ext:u1", "anon:a1", "email:u1@x.io", "email:U1%40X.io"):
        response = api.get_json(f"/api/v1/users/{ref}")
        assert response.status_code == 200, ref
        assert response.json()["internal_id"] == user.pk
        assert response.json()["id"] == "ext:u1"


def test_an_empty_prefixed_ref_answers_400(api):
    assert api.get_json("/api/v1/users/anon:").status_code == 400


def test_a_wrong_method_answers_405(api):
    response = api.get_json("/api/v1/signals")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_a_non_json_body_answers_415(api):
    response = api.post("/api/v1/signals", "name=x", content_type="application/x-www-form-urlencoded",
                        HTTP_AUTHORIZATION=f"Bearer {api.raw_key}")
    assert response.status_code == 415


def test_a_body_over_one_mebibyte_answers_413(api):
    body = '{"user": {"id": "u"}, "name": "x", "properties": {"blob": "' + "x" * (1024 * 1024) + '"}}'
    response = api.post_json("/api/v1/signals", body)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_erasing_needs_the_admin_scope(api_as):
    EndUserFactory(external_id="u1")
    assert api_as("read").delete_json("/api/v1/users/u1").status_code == 403
    assert EndUser.objects.get(external_id="u1").deleted_at is None


def test_keys_are_stored_only_as_hashes(make_key):
    raw = make_key("ingest")
    key = ApiKey.objects.get()
    assert raw not in (key.key_hash, key.prefix, str(key.scopes))
    assert raw.startswith(f"pk_{key.prefix}_")
    assert len(raw.split("_", 2)[2]) >= 43  # 256 random bits, base64url


def test_a_revoked_key_stops_working_once_the_cache_expires(make_key, settings, now):
    from engagement.keys import revoke
    raw = make_key("read")
    assert authenticate(raw) is not None
    revoke(ApiKey.objects.all(), now=now)
    clear_cache()
    assert authenticate(raw) is None


def test_last_used_is_recorded_without_a_write_per_request(make_key):
    raw = make_key("read")
    client = ApiClient(raw)
    EndUserFactory(external_id="u1")
    client.get_json("/api/v1/users/u1")
    assert ApiKey.objects.get().last_used_at is not None
    with CaptureQueriesContext(connection) as captured:
        client.get_json("/api/v1/users/u1")
    # Key lookup cached, no UPDATE of last_used_at; the test's transaction adds a savepoint
    # around each user section (engagement/user_sections.py), which a real request has not.
    queries = [q["sql"] for q in captured.captured_queries if "SAVEPOINT" not in q["sql"].upper()]
    assert len(queries) <= 6
    assert not [q for q in queries if q.upper().startswith("UPDATE")]


def test_the_create_api_key_command_prints_the_key_alone_on_its_last_line(capsys):
    from django.core.management import call_command
    call_command("create_api_key", "--name", "ci", "--scopes", "ingest,read")
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert authenticate(last).scopes == ("ingest", "read")


@pytest.mark.parametrize("args", [["--name", "x", "--scopes", "root"], ["--name", " ", "--scopes", "read"],
                                  ["--name", "x", "--scopes", ""]])
def test_the_create_api_key_command_refuses_bad_input(args):
    from django.core.management import CommandError, call_command
    with pytest.raises(CommandError):
        call_command("create_api_key", *args)
    assert not ApiKey.objects.exists()


def _routes(patterns, prefix=""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            route = prefix + str(entry.pattern)
            if route.startswith("admin/") or route.startswith("django-rq"):
                continue
            yield from _routes(entry.url_patterns, route)
        elif isinstance(entry, URLPattern):
            yield "/" + prefix + str(entry.pattern)


def _openapi_path(route: str) -> str:
    import re
    return re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)


def test_every_route_is_in_the_openapi_document_with_its_scope(client):
    doc = client.get("/api/v1/openapi.json").json()
    routes = {_openapi_path(r) for r in _routes(get_resolver().url_patterns)}
    missing = routes - set(doc["paths"])
    assert not missing, f"routes missing from the OpenAPI document: {sorted(missing)}"
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            assert "x-pulse-scope" in operation, f"{method.upper()} {path} names no scope"


def test_the_openapi_document_is_valid_openapi_3(client):
    doc = client.get("/api/v1/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    assert doc["paths"]["/api/v1/signals"]["post"]["x-pulse-scope"] == "ingest"


@pytest.mark.parametrize("path", ["/api/v1/nope", "/api/v2/users", "/api/v1/users/u1/nope"])
def test_unknown_api_paths_answer_404_in_the_error_shape(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("path", ["/v1/nope", "/v1/track/extra"])
def test_unknown_segment_paths_answer_404_in_the_segment_shape(client, path):
    response = client.post(path, "{}", content_type="application/json")
    assert response.status_code == 404
    assert response.json() == {"success": False, "code": "not_found",
                               "message": "no such Segment-compatible endpoint"}


def test_the_openapi_document_refuses_writes_in_the_error_shape(client):
    response = client.post("/api/v1/openapi.json", "{}", content_type="application/json")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
