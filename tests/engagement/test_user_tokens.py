"""User tokens: minted with `send`, short-lived, only for their own user, only where a route opts in."""

from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from engagement import user_tokens
from engagement.erase import erase_user
from engagement.identity import Identifiers, resolve_user
from tests.factories import EndUserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.engagement.token_urls")]


def bearer(token):
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


@pytest.fixture
def ada():
    return EndUserFactory(external_id="ada", email="ada@example.com")


def mint_through_api(api_as, ref="ext:ada", body=None):
    return api_as("send").post_json(f"/api/v1/users/{ref}/token", body or {})


def test_a_send_key_mints_a_token_that_expires_in_an_hour_by_default(api_as, ada):
    before = timezone.now()
    response = mint_through_api(api_as)
    assert response.status_code == 201
    body = response.json()
    assert body["token"].startswith("ut_") and set(body) == {"token", "expires_at"}
    expires = timezone.datetime.fromisoformat(body["expires_at"])
    assert timedelta(minutes=59) < expires - before <= timedelta(hours=1, seconds=1)


def test_minting_needs_the_send_scope(api_as, ada):
    for scopes in ("read", "ingest", "ingest,read"):
        assert api_as(scopes).post_json("/api/v1/users/ext:ada/token", {}).status_code == 403


def test_minting_takes_an_optional_lifetime_within_bounds(api_as, ada):
    assert mint_through_api(api_as, body={"ttl_seconds": 120}).status_code == 201
    for bad in (59, 86401, "60", 1.5, True, None):
        response = mint_through_api(api_as, body={"ttl_seconds": bad})
        assert response.status_code == 400, bad
        assert response.json()["error"]["details"][0]["field"] == "ttl_seconds"
    assert mint_through_api(api_as, body={"nope": 1}).status_code == 400


def test_minting_without_any_body_works_and_an_unknown_user_is_404(api_as, ada):
    client = api_as("send")
    assert client.generic("POST", "/api/v1/users/ext:ada/token", "", **client._auth({})).status_code == 201
    assert mint_through_api(api_as, ref="ext:nobody").status_code == 404


def test_a_token_reads_an_opted_in_route_for_its_own_user(client, ada):
    token, _ = user_tokens.mint(ada, now=timezone.now())
    response = client.get("/api/v1/users/email:ada@example.com/whoami", **bearer(token))
    assert response.status_code == 200
    assert response.json() == {"user": "ext:ada", "actor": "user_token"}


def test_a_token_for_one_user_is_forbidden_for_any_other_user_known_or_not(client, ada):
    EndUserFactory(external_id="bob")
    token, _ = user_tokens.mint(ada, now=timezone.now())
    for ref in ("ext:bob", "ext:nobody", "email:%00"):
        response = client.get(f"/api/v1/users/{ref}/whoami", **bearer(token))
        assert response.status_code == 403, ref
        assert "bob" not in response.content.decode()


def test_a_token_is_refused_on_the_methods_of_a_route_that_did_not_opt_in(client, ada):
    token, _ = user_tokens.mint(ada, now=timezone.now())
    response = client.post("/api/v1/users/ext:ada/whoami", "{}", content_type="application/json",
                           **bearer(token))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_api_keys_keep_working_on_opted_in_routes(api_as, ada):
    response = api_as("read").get_json("/api/v1/users/ext:ada/whoami")
    assert response.status_code == 200 and response.json()["actor"] == "api_key:test key"


def test_an_expired_token_is_401(client, ada):
    token, _ = user_tokens.mint(ada, now=timezone.now(), ttl=timedelta(minutes=5))
    with time_machine.travel(timezone.now() + timedelta(minutes=5, seconds=1)):
        response = client.get("/api/v1/users/ext:ada/whoami", **bearer(token))
    assert response.status_code == 401


@pytest.mark.parametrize("mangle", [
    lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),
    lambda t: t.replace("ut_", "ut_x"),
    lambda t: "ut_",
    lambda t: "ut_" + "A" * 500,
    lambda t: "ut_not:a:token",
])
def test_a_forged_or_garbled_token_is_401(client, ada, mangle):
    token, _ = user_tokens.mint(ada, now=timezone.now())
    assert client.get("/api/v1/users/ext:ada/whoami", **bearer(mangle(token))).status_code == 401


def test_a_token_signed_for_another_purpose_is_refused(client, ada, settings):
    from django.core import signing

    forged = "ut_" + signing.dumps({"u": ada.pk, "exp": 4102444800})  # default salt
    assert client.get("/api/v1/users/ext:ada/whoami", **bearer(forged)).status_code == 401


def test_an_erased_users_token_stops_working_and_a_merged_users_acts_for_the_survivor(client, now):
    anon = resolve_user(Identifiers(anonymous_id="dev-1"), now=now).user
    token, _ = user_tokens.mint(anon, now=now)
    survivor = resolve_user(Identifiers(external_id="grace", anonymous_id="dev-1"), now=now).user
    response = client.get("/api/v1/users/ext:grace/whoami", **bearer(token))
    assert response.status_code == 200 and response.json()["user"] == "ext:grace"
    erase_user(survivor, erased_by="test", now=now)
    assert client.get("/api/v1/users/ext:grace/whoami", **bearer(token)).status_code == 401


def test_cors_answers_only_configured_origins_on_token_routes(client, ada, settings):
    settings.PULSE_CORS_ORIGINS = ["https://app.example.com"]
    preflight = client.options("/api/v1/users/ext:ada/whoami", HTTP_ORIGIN="https://app.example.com",
                               HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET")
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
    assert preflight.headers["Access-Control-Allow-Methods"] == "GET"
    token, _ = user_tokens.mint(ada, now=timezone.now())
    actual = client.get("/api/v1/users/ext:ada/whoami", HTTP_ORIGIN="https://app.example.com",
                        **bearer(token))
    assert actual.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    other = client.get("/api/v1/users/ext:ada/whoami", HTTP_ORIGIN="https://evil.example", **bearer(token))
    assert "Access-Control-Allow-Origin" not in other.headers


def test_routes_without_token_access_answer_no_cors(ada, settings):
    settings.PULSE_CORS_ORIGINS = ["*"]
    response = Client().options("/api/v1/users/ext:ada", HTTP_ORIGIN="https://app.example.com")
    assert response.status_code == 405
    assert "Access-Control-Allow-Origin" not in response.headers
