from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.models import Message
from tests.factories import EndUserFactory

from .helpers import deliver, make_template, queue

pytestmark = pytest.mark.django_db
FIELDS = {"id", "user", "template", "template_version", "channel", "category", "status", "skip_reason",
          "source", "idempotency_key", "scheduled_for", "sent_at", "read_at", "attempts", "last_error",
          "created_at"}


@pytest.fixture
def user():
    make_template()
    return EndUserFactory(external_id="u1")


def test_posting_a_message_queues_it_and_answers_202_with_the_message(api_as, user):
    body = {"user": "u1", "template": "tips.weekly", "context": {"plan": "pro"}, "idempotency_key": "k"}
    response = api_as("send").post_json("/api/v1/messages", body)
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["created"] is True and set(body["message"]) == FIELDS
    assert body["message"]["user"] == "ext:u1" and body["message"]["status"] == "queued"
    assert body["message"]["template_version"] == 1 and body["message"]["source"] == "api"


def test_a_repeated_key_returns_the_existing_message_and_a_conflicting_one_is_409(api_as, user):
    client = api_as("send")
    body = {"user": "u1", "template": "tips.weekly", "idempotency_key": "k", "context": {"a": 1}}
    first = client.post_json("/api/v1/messages", body).json()
    again = client.post_json("/api/v1/messages", body)
    assert again.status_code == 202 and again.json()["created"] is False
    assert again.json()["message"]["id"] == first["message"]["id"]
    conflict = client.post_json("/api/v1/messages", {**body, "context": {"a": 2}})
    assert conflict.status_code == 409 and conflict.json()["error"]["code"] == "idempotency_conflict"
    assert Message.objects.count() == 1


def test_an_unknown_user_is_404_and_an_unknown_template_400(api_as, user):
    client = api_as("send")
    missing = client.post_json("/api/v1/messages", {"user": "ghost", "template": "tips.weekly"})
    assert missing.status_code == 404
    response = client.post_json("/api/v1/messages", {"user": "u1", "template": "nope"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "unknown_template"


@pytest.mark.parametrize("body, field", [
    ({"template": "tips.weekly"}, "user"),
    ({"user": "u1"}, "template"),
    ({"user": "u1", "template": "tips.weekly", "context": [1]}, "context"),
    ({"user": "u1", "template": "tips.weekly", "scheduled_for": "tomorrow"}, "scheduled_for"),
    ({"user": "u1", "template": "tips.weekly", "idempotency_key": "k" * 256}, "idempotency_key"),
    ({"user": "u1", "template": "tips.weekly", "idempotency_key": 7}, "idempotency_key"),
    ({"user": "u1", "template": "tips.weekly", "extra": 1}, "extra"),
    ({"user": "u1", "template": "t\x00"}, "template"),
])
def test_bad_message_bodies_are_400_naming_the_field(api_as, user, body, field):
    response = api_as("send").post_json("/api/v1/messages", body)
    assert response.status_code == 400, response.content
    assert field in {d["field"] for d in response.json()["error"]["details"]}
    assert not Message.objects.exists()


@pytest.mark.parametrize("raw", ["{", "[]", "null", '{"user": "u1", "template": NaN}'])
def test_malformed_json_is_400(api_as, user, raw):
    assert api_as("send").post_json("/api/v1/messages", raw).status_code == 400


def test_a_bad_user_ref_is_400(api_as, user):
    response = api_as("send").post_json("/api/v1/messages", {"user": "ext:", "template": "tips.weekly"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_user_ref"


def test_scheduled_for_is_kept(api_as, user):
    at = (timezone.now() + timedelta(days=1)).replace(microsecond=0)
    body = api_as("send").post_json("/api/v1/messages", {"user": "u1", "template": "tips.weekly",
                                                         "scheduled_for": at.isoformat()}).json()
    assert body["message"]["scheduled_for"] == at.isoformat()


def test_messages_are_listed_newest_first_with_filters_and_cursors(api_as, user):
    other = EndUserFactory(external_id="u2")
    now = timezone.now()
    a = queue(user, idempotency_key="a", now=now - timedelta(minutes=3))
    b = queue(other, idempotency_key="b", now=now - timedelta(minutes=2))
    c = queue(user, idempotency_key="c", now=now - timedelta(minutes=1), source="lifecycle")
    client = api_as("read")
    ids = lambda r: [m["id"] for m in r.json()["messages"]]  # noqa: E731
    assert ids(client.get_json("/api/v1/messages")) == [c.message_id, b.message_id, a.message_id]
    assert ids(client.get_json("/api/v1/messages?user=u1")) == [c.message_id, a.message_id]
    assert ids(client.get_json("/api/v1/messages?source=lifecycle")) == [c.message_id]
    assert ids(client.get_json("/api/v1/messages?status=sent")) == []
    assert ids(client.get_json("/api/v1/messages?template=nope")) == []
    assert ids(client.get_json("/api/v1/messages?user=ghost")) == []
    page = client.get_json("/api/v1/messages?limit=2").json()
    rest = client.get_json(f"/api/v1/messages?limit=2&cursor={page['next_cursor']}")
    assert ids(rest) == [a.message_id] and rest.json()["next_cursor"] is None


@pytest.mark.parametrize("query", ["status=bogus", "source=bogus", "limit=0", "cursor=forged", "user=ext:"])
def test_bad_list_queries_are_400(api_as, user, query):
    assert api_as("read").get_json(f"/api/v1/messages?{query}").status_code == 400


def test_one_message_is_read_by_id_and_a_missing_or_malformed_id_is_404(api_as, user):
    queued = queue(user)
    deliver()
    client = api_as("read")
    body = client.get_json(f"/api/v1/messages/{queued.message_id}").json()["message"]
    assert body["status"] == "sent" and body["sent_at"]
    for bad in ("999999", "abc", "1" * 40, "-1"):
        assert client.get_json(f"/api/v1/messages/{bad}").status_code == 404


@pytest.mark.parametrize("scopes, method, path, status", [
    ("read", "post", "/api/v1/messages", 403),
    ("ingest", "post", "/api/v1/messages", 403),
    ("send", "get", "/api/v1/messages", 403),
    ("ingest", "get", "/api/v1/messages", 403),
    ("send", "get", "/api/v1/templates", 403),
])
def test_each_messages_route_needs_its_scope(api_as, user, scopes, method, path, status):
    client = api_as(scopes)
    response = client.post_json(path, {}) if method == "post" else client.get_json(path)
    assert response.status_code == status
