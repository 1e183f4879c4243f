"""The Segment-compatible API (`/v1/*`) through Django's test client."""

import base64
import gzip
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from django.utils import timezone

from engagement.identity import Identifiers, find_user
from engagement.models import EndUser, Membership, Signal, Tenant
from engagement.openapi import document
from engagement.urls import urlpatterns
from tests.factories import EndUserFactory, SignalFactory

pytestmark = pytest.mark.django_db


def basic(raw_key: str) -> str:
    return "Basic " + base64.b64encode(f"{raw_key}:".encode()).decode()


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@pytest.fixture
def key(make_key):
    return make_key("ingest")


@pytest.fixture
def send(key):
    """send("track", {...}) -> response; JSON + Basic auth unless told otherwise."""
    client = Client()

    def post(kind, body, *, raw_key=key, content_type="application/json", encoding=None, auth=True):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = {}
        if auth and raw_key:
            headers["Authorization"] = basic(raw_key)
        if encoding == "gzip":
            data = gzip.compress(data)
            headers["Content-Encoding"] = "gzip"
        return client.post(f"/v1/{kind}", data, content_type=content_type, headers=headers)

    return post


def segment_signals(name=None):
    query = Signal.objects.filter(source=Signal.Source.SEGMENT)
    return query.filter(name=name) if name else query


def system_signals(name):
    return Signal.objects.filter(source=Signal.Source.SYSTEM, name=name)


# --- authentication and the body --------------------------------------------


def test_track_with_basic_auth_stores_a_segment_signal(send):
    response = send("track", {"userId": "u1", "event": "Order Completed", "properties": {"total": 30}})

    assert response.status_code == 200
    assert response.json() == {"success": True}
    signal = segment_signals().get()
    assert signal.name == "Order Completed"
    assert signal.properties == {"total": 30}
    assert signal.user.external_id == "u1"


def test_write_key_in_the_body_is_enough(send, key):
    response = send("track", {"writeKey": key, "anonymousId": "a1", "event": "Viewed"}, auth=False)

    assert response.status_code == 200
    assert segment_signals("Viewed").get().user.anonymous_id == "a1"


def test_text_plain_body_as_sendbeacon_sends_it_is_accepted(send, key):
    body = json.dumps({"writeKey": key, "anonymousId": "a1", "event": "Beacon"}).encode()

    response = send("track", body, auth=False, content_type="text/plain;charset=UTF-8")

    assert response.status_code == 200
    assert segment_signals("Beacon").exists()


def test_gzip_body_is_inflated(send):
    response = send("track", {"userId": "u1", "event": "Zipped"}, encoding="gzip")

    assert response.status_code == 200
    assert segment_signals("Zipped").exists()


def test_gzip_body_inflating_beyond_one_mebibyte_is_refused_with_413(send, settings):
    padding = " " * (settings.PULSE_MAX_BODY_BYTES + 10)
    bomb = ('{"userId": "u1", "event": "Bomb"' + padding + "}").encode()
    assert len(gzip.compress(bomb)) < 10_000

    response = send("track", bomb, encoding="gzip")

    assert response.status_code == 413
    assert response.json()["success"] is False
    assert not Signal.objects.exists()


def test_gzip_body_of_several_members_is_read_whole(key):
    body = json.dumps({"userId": "u1", "event": "Members"}).encode()
    data = gzip.compress(body[:10]) + gzip.compress(body[10:])

    response = Client().post("/v1/track", data, content_type="application/json",
                             headers={"Authorization": basic(key), "Content-Encoding": "gzip"})

    assert response.status_code == 200
    assert segment_signals("Members").exists()


def test_truncated_gzip_is_400(key):
    data = gzip.compress(json.dumps({"userId": "u1", "event": "Cut"}).encode())[:-12]

    response = Client().post("/v1/track", data, content_type="application/json",
                             headers={"Authorization": basic(key), "Content-Encoding": "gzip"})

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_gzip"


def test_oversized_plain_body_is_refused_with_413(send, settings):
    body = json.dumps({"userId": "u1", "event": "Big",
                       "properties": {"blob": "x" * settings.PULSE_MAX_BODY_BYTES}}).encode()

    response = send("track", body)

    assert response.status_code == 413
    assert not Signal.objects.exists()


def test_bad_json_is_400(send):
    response = send("track", b'{"userId": "u1", "event": ')

    assert response.status_code == 400
    body = response.json()
    assert (body["success"], body["code"]) == (False, "invalid_json")
    assert "not valid JSON" in body["message"]


def test_other_content_types_are_415(send):
    response = send("track", b"userId=u1&event=x", content_type="application/x-www-form-urlencoded")

    assert response.status_code == 415


def test_content_encodings_other_than_gzip_are_415(key):
    response = Client().post("/v1/track", b"{}", content_type="application/json",
                             headers={"Authorization": basic(key), "Content-Encoding": "br"})

    assert response.status_code == 415


def test_get_is_405(key):
    response = Client().get("/v1/track", headers={"Authorization": basic(key)})

    assert response.status_code == 405
    assert response["Allow"] == "POST"


def test_unknown_or_missing_key_is_401(send):
    assert send("track", {"userId": "u1", "event": "x"}, raw_key="pk_nope_nope").status_code == 401
    assert send("track", {"userId": "u1", "event": "x"}, auth=False).status_code == 401
    assert not Signal.objects.exists()


def test_key_without_the_ingest_scope_is_403(send, make_key):
    response = send("track", {"userId": "u1", "event": "x"}, raw_key=make_key("read"))

    assert response.status_code == 403
    assert response.json()["success"] is False


def test_rate_limited_key_gets_429_with_retry_after(send, settings):
    settings.PULSE_RATE_LIMITS = {**settings.PULSE_RATE_LIMITS, "ingest": 1}
    assert send("track", {"userId": "u1", "event": "x"}).status_code == 200

    response = send("track", {"userId": "u1", "event": "x"})

    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 1
    assert response.json()["code"] == "rate_limited"


# --- messages ------------------------------------------------------------------


def test_message_without_user_id_or_anonymous_id_is_400(send):
    response = send("track", {"event": "x", "traits": {"email": "a@example.com"}})

    assert response.status_code == 400
    assert "userId" in response.json()["message"]
    assert not Signal.objects.exists()


def test_numeric_user_ids_are_taken_as_strings(send):
    assert send("track", {"userId": 42, "anonymousId": 7, "event": "x"}).status_code == 200

    user = segment_signals().get().user
    assert (user.external_id, user.anonymous_id) == ("42", "7")


def test_replayed_message_id_is_stored_once(send):
    body = {"userId": "u1", "event": "Paid", "messageId": str(uuid.uuid4())}

    assert send("track", body).status_code == 200
    assert send("track", body).json() == {"success": True}

    assert segment_signals("Paid").count() == 1
    assert segment_signals().get().idempotency_key == "seg:" + body["messageId"]


def test_replayed_identify_appends_its_signal_once(send):
    body = {"userId": "u1", "traits": {"plan": "pro"}, "messageId": "m-identify-1"}

    assert send("identify", body).status_code == 200
    assert send("identify", body).status_code == 200

    assert system_signals("$identify").count() == 1


def test_sent_at_corrects_the_client_clock(send):
    client_now = timezone.now() + timedelta(hours=3)  # the device's clock is 3 hours ahead
    happened = client_now - timedelta(minutes=10)

    send("track", {"userId": "u1", "event": "Skewed", "timestamp": iso(happened),
                   "sentAt": iso(client_now)})

    signal = segment_signals("Skewed").get()
    assert signal.occurred_at == happened + (signal.received_at - client_now)
    assert abs(signal.occurred_at - (signal.received_at - timedelta(minutes=10))) < timedelta(seconds=1)


def test_original_timestamp_is_used_when_timestamp_is_missing(send):
    happened = timezone.now() - timedelta(hours=2)

    send("track", {"userId": "u1", "event": "Old", "originalTimestamp": iso(happened)})

    signal = segment_signals("Old").get()
    assert signal.occurred_at == happened
    assert signal.realtime is False


def test_missing_timestamp_means_the_time_of_receipt(send):
    send("track", {"userId": "u1", "event": "Now"})

    signal = segment_signals("Now").get()
    assert signal.occurred_at == signal.received_at


def test_timestamp_more_than_five_minutes_ahead_is_400(send):
    ahead = timezone.now() + timedelta(minutes=20)

    response = send("track", {"userId": "u1", "event": "Future", "timestamp": iso(ahead)})

    assert response.status_code == 400
    assert "future" in response.json()["message"]
    assert not Signal.objects.exists()


def test_unknown_fields_are_accepted_and_context_is_kept(send):
    context = {"library": {"name": "analytics.js", "version": "5.0"}, "ip": "10.0.0.1"}

    response = send("track", {
        "userId": "u1", "event": "Extra", "context": context, "integrations": {"All": True},
        "_metadata": {"bundled": []}, "channel": "server", "version": 2, "options": {},
        "sentAt": iso(timezone.now()), "receivedAt": "whatever", "type": "ignored-on-this-path",
    })

    assert response.status_code == 200
    assert segment_signals("Extra").get().context == context


def test_context_traits_email_names_the_user(send):
    send("track", {"anonymousId": "a1", "event": "x", "context": {"traits": {"email": "Ann@Example.com"}}})

    assert segment_signals().get().user.email == "ann@example.com"


def test_context_group_id_attributes_the_signal_to_that_tenant(send):
    send("track", {"userId": "u1", "event": "x", "context": {"groupId": "acme"}})

    signal = segment_signals().get()
    assert signal.tenant.key == "acme"
    assert Membership.objects.filter(user=signal.user, tenant__key="acme").exists()


def test_text_the_database_would_refuse_is_400_not_500(send):
    response = send("track", {"userId": "u1", "event": "x", "properties": {"q": "a\u0000b"}})

    assert response.status_code == 400
    assert "NUL" in response.json()["message"]


@pytest.mark.parametrize("bad_item", [
    '{"type": "track", "userId": "u1", "event": "x", "properties": {"q": "\\ud800"}}',
    '{"type": "track", "userId": "u1", "event": "x", "properties": {"a\\u0000b": 1}}',
    '{"type": "track", "userId": "u1", "event": "x", "properties": {"n": 1e400}}',
    '{"type": "track", "userId": "u1", "event": "x", "properties": ' + '{"a": ' * 20 + "1" + "}" * 20 + "}",
    '{"type": "track", "userId": "' + "u" * 256 + '", "event": "x"}',
    '{"type": "track", "userId": "u1", "event": "x", "context": {"groupId": "' + "g" * 201 + '"}}',
    '{"type": "group", "userId": "u1", "groupId": true}',
    '{"type": "identify", "userId": "u1", "traits": ["not", "an", "object"]}',
    '{"type": "track", "userId": "u1", "event": "x", "timestamp": "yesterday"}',
    '{"type": "track", "userId": "u1", "event": "x", "timestamp": "9999-12-31T23:59:59Z",'
    ' "sentAt": "0001-01-01T00:00:00Z"}',
], ids=["surrogate", "nul-key", "infinite", "deep", "long-user-id", "long-group-id", "bool-group-id",
        "traits-list", "bad-timestamp", "overflow"])
def test_an_item_the_database_would_refuse_is_dropped_and_its_neighbour_stored(send, bad_item):
    body = '{"batch": [' + bad_item + ', {"type": "track", "userId": "u2", "event": "Kept"}]}'

    response = send("batch", body.encode())

    assert response.status_code == 200, response.content
    assert [d["index"] for d in response.json()["dropped"]] == [0]
    assert list(Signal.objects.values_list("name", flat=True)) == ["Kept"]


def test_too_long_event_name_is_400(send):
    response = send("track", {"userId": "u1", "event": "e" * 201})

    assert response.status_code == 400


# --- identify, group, alias ------------------------------------------------


def test_identify_patches_properties_and_appends_an_identify_signal(send):
    EndUserFactory(external_id="u1", email=None, properties={"plan": "free", "old": 1})

    response = send("identify", {"userId": "u1", "traits": {
        "plan": "pro", "old": None, "email": "Ann@Example.com", "name": "Ann"},
        "context": {"timezone": "Europe/Paris", "locale": "fr-FR"}})

    assert response.status_code == 200
    user = EndUser.objects.get(external_id="u1")
    assert user.properties == {"plan": "pro", "email": "Ann@Example.com", "name": "Ann"}
    assert user.email == "ann@example.com"
    assert (user.timezone, user.locale) == ("Europe/Paris", "fr-FR")
    signal = system_signals("$identify").get()
    assert signal.user == user
    assert signal.properties["properties"]["plan"] == "pro"


def test_identify_reads_traits_from_context_as_rudderstack_sends_them(send):
    send("identify", {"userId": "u1", "context": {"traits": {"plan": "team", "email": "b@example.com"}}})

    user = EndUser.objects.get(external_id="u1")
    assert user.properties == {"plan": "team", "email": "b@example.com"}
    assert user.email == "b@example.com"


def test_group_creates_the_tenant_the_membership_and_a_group_signal(send):
    response = send("group", {"userId": "u1", "groupId": "acme",
                              "traits": {"name": "Acme Inc", "plan": "enterprise"}})

    assert response.status_code == 200
    tenant = Tenant.objects.get(key="acme")
    assert tenant.name == "Acme Inc"
    assert tenant.traits == {"name": "Acme Inc", "plan": "enterprise"}
    user = EndUser.objects.get(external_id="u1")
    assert Membership.objects.filter(user=user, tenant=tenant).exists()
    assert user.primary_tenant == tenant
    assert system_signals("$group").get().tenant == tenant


def test_group_without_group_id_is_400(send):
    assert send("group", {"userId": "u1", "traits": {}}).status_code == 400


def test_alias_merges_the_anonymous_user_into_the_identified_one(send):
    send("track", {"anonymousId": "anon-1", "event": "Browsed"})
    send("track", {"userId": "u1", "event": "Signed In"})
    anonymous = EndUser.objects.get(anonymous_id="anon-1")

    response = send("alias", {"previousId": "anon-1", "userId": "u1"})

    assert response.status_code == 200
    survivor = EndUser.objects.get(external_id="u1", deleted_at__isnull=True)
    anonymous.refresh_from_db()
    assert anonymous.merged_into == survivor
    assert set(segment_signals().values_list("user_id", flat=True)) == {survivor.pk}
    assert find_user(Identifiers(anonymous_id="anon-1")) == survivor
    assert system_signals("$alias").get().user == survivor


def test_alias_defaults_previous_id_to_anonymous_id(send):
    send("track", {"anonymousId": "anon-2", "event": "Browsed"})

    send("alias", {"anonymousId": "anon-2", "userId": "u2"})

    assert find_user(Identifiers(anonymous_id="anon-2")).external_id == "u2"


def test_identity_conflict_is_400_with_its_code(send, make_key):
    """From a server key: a public key's email never links, so it meets no such conflict."""
    EndUserFactory(external_id="u1", email="ann@example.com")

    response = send("identify", {"userId": "u2", "traits": {"email": "ann@example.com"}},
                    raw_key=make_key("ingest,read"))

    assert response.status_code == 400
    assert response.json()["code"] == "identity_conflict"


def test_page_and_screen_become_page_and_screen_signals(send):
    send("page", {"anonymousId": "a1", "name": "Pricing", "category": "Docs",
                  "properties": {"url": "https://example.com/pricing"}})
    send("screen", {"userId": "u1", "name": "Home"})

    page = segment_signals("$page").get()
    assert page.properties == {"url": "https://example.com/pricing", "name": "Pricing", "category": "Docs"}
    assert segment_signals("$screen").get().properties == {"name": "Home"}


# --- batch --------------------------------------------------------------------


def test_batch_with_mixed_types_and_one_bad_item_stores_the_good_ones(send):
    response = send("batch", {"batch": [
        {"type": "identify", "userId": "u1", "traits": {"plan": "pro"}},
        {"type": "group", "userId": "u1", "groupId": "acme", "traits": {"name": "Acme"}},
        {"type": "track", "userId": "u1", "event": "Clicked"},
        {"type": "track", "event": "No One"},
        {"type": "page", "anonymousId": "a1", "name": "Home"},
        {"type": "screen", "userId": "u1", "name": "Settings"},
        {"type": "alias", "previousId": "a1", "userId": "u1"},
        {"type": "dance", "userId": "u1"},
        "not a message",
    ], "sentAt": iso(timezone.now())})

    assert response.status_code == 200
    assert [d["index"] for d in response.json()["dropped"]] == [3, 7, 8]
    user = EndUser.objects.get(external_id="u1", deleted_at__isnull=True)
    assert user.properties == {"plan": "pro"}
    assert sorted(segment_signals().values_list("name", flat=True)) == ["$page", "$screen", "Clicked"]
    assert segment_signals("Clicked").get().tenant.key == "acme"
    assert segment_signals("$page").get().user == user  # a1 was aliased into u1
    assert system_signals("$identify").count() == system_signals("$group").count() == 1


def test_batch_drops_a_future_item_and_keeps_the_rest(send):
    ahead = iso(timezone.now() + timedelta(hours=1))

    response = send("batch", {"batch": [
        {"type": "track", "userId": "u1", "event": "Future", "timestamp": ahead},
        {"type": "track", "userId": "u1", "event": "Present"},
    ]})

    assert response.status_code == 200
    assert response.json()["dropped"][0]["index"] == 0
    assert list(segment_signals().values_list("name", flat=True)) == ["Present"]


def test_batch_isolates_an_identity_conflict_without_losing_its_neighbours(send, make_key):
    EndUserFactory(external_id="u1", email="ann@example.com")

    response = send("batch", {"batch": [
        {"type": "track", "userId": "u2", "event": "Conflicted",
         "context": {"traits": {"email": "ann@example.com"}}},
        {"type": "track", "userId": "u3", "event": "Fine"},
        {"type": "track", "userId": "u1", "event": "Fine"},
    ]}, raw_key=make_key("ingest,read"))

    assert response.status_code == 200
    assert response.json()["dropped"] == [{"index": 0, "code": "identity_conflict",
                                           "message": response.json()["dropped"][0]["message"]}]
    assert segment_signals("Fine").count() == 2
    assert not segment_signals("Conflicted").exists()


def test_batch_messages_use_the_batch_sent_at_and_context(send):
    client_now = timezone.now() + timedelta(hours=1)

    send("batch", {"sentAt": iso(client_now), "context": {"app": "mobile"}, "batch": [
        {"type": "track", "userId": "u1", "event": "x", "timestamp": iso(client_now),
         "context": {"ip": "10.0.0.1"}}]})

    signal = segment_signals().get()
    assert signal.occurred_at == signal.received_at
    assert signal.context == {"app": "mobile", "ip": "10.0.0.1"}


def test_batch_context_the_database_would_refuse_drops_every_item_not_the_server(send):
    response = send("batch", {"context": {"bad": "a\u0000b"}, "batch": [
        {"type": "track", "userId": "u1", "event": "x"}]})

    assert response.status_code == 400
    assert not Signal.objects.exists()


def test_replayed_batch_is_a_success_that_stores_nothing_new(send):
    body = {"batch": [
        {"type": "track", "userId": "u1", "event": "Once", "messageId": "m1"},
        {"type": "identify", "userId": "u1", "traits": {"a": 1}, "messageId": "m2"},
        {"type": "group", "userId": "u1", "groupId": "acme", "messageId": "m3"},
    ]}

    assert send("batch", body).json() == {"success": True}
    assert send("batch", body, encoding="gzip").json() == {"success": True}

    assert segment_signals("Once").count() == 1
    assert system_signals("$identify").count() == system_signals("$group").count() == 1


def test_batch_in_which_nothing_can_be_stored_is_400(send):
    response = send("batch", {"batch": [{"type": "track", "event": "nobody"}]})

    assert response.status_code == 400
    assert response.json()["dropped"][0]["index"] == 0


def test_batch_without_a_batch_array_is_400(send):
    assert send("batch", {"messages": []}).status_code == 400


def test_empty_batch_is_a_success(send):
    assert send("batch", {"batch": []}).json() == {"success": True}


def test_import_is_the_batch_endpoint(send):
    response = send("import", {"batch": [{"type": "track", "userId": "u1", "event": "Imported"}]})

    assert response.status_code == 200
    assert segment_signals("Imported").exists()


def test_existing_signals_of_a_merged_user_follow_it(send):
    anonymous = EndUserFactory(external_id=None, email=None, anonymous_id="anon-9")
    SignalFactory(user=anonymous, name="app.opened")

    send("alias", {"previousId": "anon-9", "userId": "u9"})

    survivor = find_user(Identifiers(external_id="u9"))
    assert Signal.objects.get(name="app.opened").user == survivor


# --- the OpenAPI document --------------------------------------------------------


def test_every_segment_route_is_documented_with_the_ingest_scope_and_basic_auth():
    doc = document()
    routes = [p for p in urlpatterns if str(p.pattern).startswith("v1/")]
    assert len(routes) == 8
    for route in routes:
        operation = doc["paths"][f"/{route.pattern}"]["post"]
        assert operation["x-pulse-scope"] == route.callback.pulse_scopes["POST"] == "ingest"
        assert operation["security"] == [{"segmentWriteKey": []}]
        assert {"200", "400", "401", "403", "413", "415", "429"} <= set(operation["responses"])
    assert doc["components"]["securitySchemes"]["segmentWriteKey"]["scheme"] == "basic"
