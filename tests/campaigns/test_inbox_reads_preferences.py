from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from campaigns.models import Message, Preference
from engagement import user_tokens
from engagement.identity import refresh_primary_tenants
from engagement.models import Signal
from tests.factories import EndUserFactory, MembershipFactory, TenantFactory

from .helpers import deliver, make_template, queue

pytestmark = pytest.mark.django_db


def token_client(user):
    raw, _ = user_tokens.mint(user, now=timezone.now())
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


@pytest.fixture
def delivered():
    """u1 with two delivered in-app messages (and one still queued)."""
    make_template()
    user = EndUserFactory(external_id="u1", locale="en", properties={"name": "Ann"})
    now = timezone.now()
    first = queue(user, idempotency_key="a", context={"plan": "pro"}, now=now - timedelta(minutes=3))
    second = queue(user, idempotency_key="b", now=now - timedelta(minutes=2))
    deliver(now)
    queue(user, idempotency_key="later", scheduled_for=now + timedelta(days=1))
    return user, first.message_id, second.message_id


def _engages():
    return list(
        Signal.objects.filter(name="$engage").values(
            "user_id", "tenant_id", "feature", "idempotency_key", "source"
        )
    )


def test_the_inbox_lists_delivered_in_app_messages_newest_first_with_the_unread_count(api_as, delivered):
    user, first, second = delivered
    body = api_as("read").get_json("/api/v1/users/u1/messages").json()
    assert [m["id"] for m in body["messages"]] == [second, first] and body["unread"] == 2
    item = body["messages"][1]
    assert set(item) == {"id", "template", "subject", "text", "html", "actions", "read_at", "created_at"}
    assert item["subject"] == "Hi Ann" and item["actions"] == [{"id": "ok", "label": "OK"}]


def test_the_inbox_filters_unread_after_a_read(api_as, delivered):
    user, first, second = delivered
    api_as("send").post_json(f"/api/v1/messages/{first}/read", {})
    body = api_as("read").get_json("/api/v1/users/u1/messages?unread=true").json()
    assert [m["id"] for m in body["messages"]] == [second] and body["unread"] == 1
    assert api_as("read").get_json("/api/v1/users/u1/messages?unread=maybe").status_code == 400


def test_only_the_first_read_counts_and_emits_engage_for_the_primary_tenant(api_as, delivered):
    user, first, _ = delivered
    old, new = TenantFactory(), TenantFactory()
    MembershipFactory(user=user, tenant=new, joined_at=timezone.now())
    MembershipFactory(user=user, tenant=old, joined_at=timezone.now() - timedelta(days=30))
    refresh_primary_tenants([user.pk])
    client = api_as("send")
    one = client.post_json(f"/api/v1/messages/{first}/read", {}).json()
    two = client.post_json(f"/api/v1/messages/{first}/read", {}).json()
    assert one["first_read"] is True and two["first_read"] is False and one["read_at"] == two["read_at"]
    assert _engages() == [
        {
            "user_id": user.pk,
            "tenant_id": old.pk,
            "feature": "tips",
            "idempotency_key": f"engage:{first}",
            "source": "system",
        }
    ]


def test_a_user_without_a_membership_gets_no_engage(api_as, delivered):
    _, first, _ = delivered
    assert api_as("send").post_json(f"/api/v1/messages/{first}/read", {}).json()["first_read"] is True
    assert _engages() == []


def test_with_loops_off_a_first_read_emits_nothing(api_as, delivered, settings):
    user, first, _ = delivered
    MembershipFactory(user=user)
    refresh_primary_tenants([user.pk])
    settings.LOOPS_ENABLED = False
    assert api_as("send").post_json(f"/api/v1/messages/{first}/read", {}).json()["first_read"] is True
    assert _engages() == []


def test_the_owners_token_reads_and_marks_its_messages_and_no_one_elses(delivered):
    user, first, _ = delivered
    stranger = EndUserFactory(external_id="u2")
    mine = token_client(user)
    assert mine.get("/api/v1/users/u1/messages").json()["unread"] == 2
    assert mine.generic("POST", f"/api/v1/messages/{first}/read", "").json()["first_read"] is True
    theirs = token_client(stranger)
    assert theirs.get("/api/v1/users/u1/messages").status_code == 403
    theirs_read = theirs.post(f"/api/v1/messages/{first}/read")
    missing_read = theirs.post("/api/v1/messages/999999/read")
    assert theirs_read.status_code == missing_read.status_code == 404
    assert theirs_read.json() == missing_read.json()  # another user's message id is not an oracle
    assert theirs.get("/api/v1/users/u1/preferences").status_code == 403
    patch = theirs.post("/api/v1/users/u1/preferences", "{}", content_type="application/json")
    assert patch.status_code == 403
    assert theirs.generic("POST", "/api/v1/messages/999999/read", "").status_code == 404
    assert mine.get(f"/api/v1/messages/{first}").status_code == 401  # not opted in


def test_an_undelivered_message_cannot_be_read(api_as, delivered):
    queued = Message.objects.get(idempotency_key="later")
    response = api_as("send").post_json(f"/api/v1/messages/{queued.pk}/read", {})
    assert response.status_code == 409 and response.json()["error"]["code"] == "not_delivered"
    assert api_as("send").post_json("/api/v1/messages/abc/read", {}).status_code == 404
    assert api_as("read").post_json(f"/api/v1/messages/{queued.pk}/read", {}).status_code == 403


def test_preferences_default_to_everything_and_a_change_appends_a_preferences_signal(api_as):
    user = EndUserFactory(external_id="u1")
    client = api_as("send")
    assert api_as("read").get_json("/api/v1/users/u1/preferences").json() == {
        "unsubscribed_all": False,
        "categories": {"transactional": True, "lifecycle": True, "marketing": True, "system": True},
    }
    body = client.post_json("/api/v1/users/u1/preferences", {"categories": {"marketing": False}}).json()
    assert body["categories"]["marketing"] is False and body["unsubscribed_all"] is False
    client.post_json("/api/v1/users/u1/preferences", {"categories": {"marketing": False}})  # no change
    token_client(user).post(
        "/api/v1/users/u1/preferences", '{"unsubscribed_all": true}', content_type="application/json"
    )
    rows = list(
        Signal.objects.filter(user=user, name="$preferences")
        .order_by("pk")
        .values_list("actor", "properties")
    )
    assert [actor for actor, _ in rows] == ["api_key:test key", "user_token"]
    signals = [properties for _, properties in rows]
    assert signals[1]["unsubscribed_all"] is True and signals[1]["categories"]["marketing"] is False
    assert Preference.objects.get(user=user).updated_by == "user_token"


@pytest.mark.parametrize(
    "body, field",
    [
        ({"unsubscribed_all": "yes"}, "unsubscribed_all"),
        ({"categories": {"spam": False}}, "categories.spam"),
        ({"categories": {"marketing": 0}}, "categories.marketing"),
        ({"categories": []}, "categories"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_preferences_are_400_naming_the_field(api_as, body, field):
    EndUserFactory(external_id="u1")
    response = api_as("send").post_json("/api/v1/users/u1/preferences", body)
    assert response.status_code == 400 and field in {d["field"] for d in response.json()["error"]["details"]}
    assert not Preference.objects.exists()


def test_preferences_of_an_unknown_user_are_404(api_as):
    assert api_as("read").get_json("/api/v1/users/ghost/preferences").status_code == 404
    assert api_as("read").get_json("/api/v1/users/ghost/messages").status_code == 404


@pytest.mark.parametrize(
    "body, content_type, status",
    [
        ("{not json", "application/json", 400),
        ('{"extra": 1}', "application/json", 400),
        ("[]", "application/json", 400),
        ("{}", "application/xml", 415),
        ("x" * (1024 * 1024 + 1), "application/json", 413),
    ],
)
def test_a_read_receipt_refuses_a_malformed_body_and_marks_nothing(
    api_as, delivered, body, content_type, status
):
    first = delivered[1]
    client = api_as("send")
    response = client.post(
        f"/api/v1/messages/{first}/read", body, content_type=content_type, **client._auth({})
    )
    assert response.status_code == status
    assert Message.objects.get(pk=first).read_at is None


def test_a_read_receipt_without_any_body_marks_the_message(api_as, delivered):
    first = delivered[1]
    client = api_as("send")
    response = client.generic("POST", f"/api/v1/messages/{first}/read", "", **client._auth({}))
    assert response.status_code == 200 and response.json()["first_read"] is True
