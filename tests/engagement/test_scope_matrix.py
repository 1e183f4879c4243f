"""Every route × every kind of credential: the status, and that nothing leaks to a caller
that may not read it. Routes come from the URL configuration, so a new route is covered
the day it is added."""

import base64
import json

import pytest
from django.test import Client
from django.utils import timezone

from engagement import keys, user_tokens
from engagement.models import EndUser
from engagement.openapi import api_routes

pytestmark = pytest.mark.django_db

VICTIM = {"external_id": "victim-ext", "anonymous_id": "victim-anon", "email": "victim@example.com"}
SECRETS = ("victim-ext", "victim-anon", "victim@example.com", "s3cret-plan")
CREDENTIALS = ["none", "ingest", "read", "send", "admin", "ingest,read", "user_token"]


def _bodies(path: str, method: str) -> dict | None:
    """A body that probes for leaks: it names the victim's email beside another id."""
    if method != "POST":
        return None
    if path == "/api/v1/users":
        return {"id": "attacker", "email": "victim@example.com"}
    if path == "/api/v1/signals":
        return {"signals": [{"user": {"id": "attacker", "email": "victim@example.com"}, "name": "x"},
                            {"user": {"id": "bystander"}, "name": "x"}]}
    if path.startswith("/v1/"):
        message = {"userId": "attacker", "event": "x", "context": {"traits": {"email": "victim@example.com"}}}
        if path in ("/v1/batch", "/v1/import"):
            return {"batch": [{**message, "type": "track"}]}
        if path == "/v1/alias":
            return {"userId": "attacker", "previousId": "victim-anon"}
        return message
    return {}


def _operations():
    for path, view in api_routes():
        for method, scope in getattr(view, "pulse_scopes", {}).items():
            if method != "HEAD":
                yield pytest.param(path, method, scope, getattr(view, "pulse_user_token", ()),
                                   id=f"{method} {path}")


@pytest.fixture
def victim():
    user = EndUser.objects.create(**VICTIM, properties={"plan": "s3cret-plan"}, first_seen_at=timezone.now())
    return user


def _credential_headers(kind: str, victim, segment: bool) -> dict:
    if kind == "none":
        return {}
    if kind == "user_token":
        raw, _ = user_tokens.mint(victim, now=timezone.now())
    else:
        _, raw = keys.create_api_key(f"key {kind}", kind, now=timezone.now())
    if segment:
        return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(f"{raw}:".encode()).decode()}
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def _grants(kind: str, scope: str | None) -> bool:
    if scope is None:
        return True
    if kind in ("none", "user_token"):
        return False
    granted = kind.split(",")
    return "admin" in granted or scope in granted


@pytest.mark.parametrize("credential", CREDENTIALS)
@pytest.mark.parametrize("path, method, scope, token_methods", list(_operations()))
def test_every_route_answers_every_credential_with_exactly_what_its_scope_grants(
    victim, path, method, scope, token_methods, credential
):
    segment = path.startswith("/v1/")
    url = path.replace("{user_ref}", "ext:victim-ext")
    body = _bodies(path, method)
    headers = _credential_headers(credential, victim, segment)
    response = Client().generic(
        method, url, json.dumps(body) if body is not None else "",
        content_type="application/json", **headers,
    )
    text = response.content.decode()

    token_ok = credential == "user_token" and method in token_methods
    if _grants(credential, scope) or token_ok:
        assert response.status_code not in (401, 403), text
        assert response.status_code < 500, text
    elif credential in ("none", "user_token"):
        assert response.status_code == 401, text
        assert "WWW-Authenticate" in response.headers
    else:
        assert response.status_code == 403, text

    reads = credential in ("read", "admin", "ingest,read") and _grants(credential, scope)
    if not reads or method != "GET":
        leaked = [s for s in SECRETS if s in text and not (method == "DELETE" and credential == "admin")]
        assert not leaked, f"{method} {path} with {credential} answered {text}"


def test_an_ingest_key_learns_only_the_ref_of_the_user_it_identifies(api_as):
    body = api_as("ingest").post_json("/api/v1/users", {"id": "u1", "email": "u1@example.com",
                                                        "properties": {"plan": "pro"}}).json()
    assert body == {"id": "ext:u1"}
    again = api_as("ingest").post_json("/api/v1/users", {"email": "u1@example.com"})
    # The ref is made of what the request sent: the canonical ext:u1 would reveal the id; and
    # the status is 200 whether the user existed or not.
    assert again.status_code == 200 and again.json() == {"id": "email:u1@example.com"}


def test_a_key_that_also_reads_gets_the_whole_user_from_identify(api_as):
    client = api_as("ingest,read")
    body = client.post_json("/api/v1/users", {"id": "u1", "properties": {"plan": "pro"}}).json()
    assert body["properties"] == {"plan": "pro"} and body["id"] == "ext:u1" and body["created"] is True


def test_an_identity_conflict_names_the_colliding_identifiers_of_the_request_not_their_owner(api_as, victim):
    body = {"id": "attacker", "email": "victim@example.com"}
    response = api_as("ingest,read").post_json("/api/v1/users", body)
    assert response.status_code == 409 and response.json()["error"]["code"] == "identity_conflict"
    assert "victim-ext" not in response.content.decode()
    # A server key is told which of its identifiers collide; a public key's email never links.
    assert "external id and email" in response.json()["error"]["message"]
    public = api_as("ingest").post_json("/api/v1/users", body)
    assert public.status_code == 200 and public.json() == {"id": "ext:attacker"}


def test_a_user_token_is_refused_on_routes_that_do_not_opt_in(client, victim):
    raw, _ = user_tokens.mint(victim, now=timezone.now())
    response = client.get("/api/v1/users/ext:victim-ext", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 401
    assert "does not accept user tokens" in response.json()["error"]["message"]


def test_the_openapi_document_names_each_operations_scope_as_its_view_declares_it(client):
    doc = client.get("/api/v1/openapi.json").json()
    for path, view in api_routes():
        declared = {m.lower(): s for m, s in getattr(view, "pulse_scopes", {}).items() if m != "HEAD"}
        documented = {m: op["x-pulse-scope"] for m, op in doc["paths"].get(path, {}).items()}
        assert documented == declared, path
        for method in getattr(view, "pulse_user_token", ()):
            assert doc["paths"][path][method.lower()]["x-pulse-user-token"] is True
