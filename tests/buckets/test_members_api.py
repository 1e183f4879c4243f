"""The membership API: bucket bodies with entry limits and reactions, members, a user's buckets."""

from datetime import timedelta

import pytest

from buckets.models import Bucket, BucketMembership, BucketReaction
from tests.factories import EndUserFactory

from .helpers import OPENED, define, drain, in_app_template, signal, webhook_template

pytestmark = pytest.mark.django_db
BODY = {"slug": "openers", "name": "Openers", "criteria": OPENED}


def test_a_bucket_body_takes_an_entry_limit_and_reactions_and_answers_them_back(api):
    in_app_template()
    webhook_template()
    body = {**BODY, "entry_limit": {"kind": "once_per_period", "period": "30d"}, "reactions": [
        {"id": "hi", "on": "enter", "action": {"message": "bucket.welcome"}},
        {"id": "hook", "on": "leave", "reasons": ["criteria"], "action": {"webhook": "bucket.hook"}},
        {"id": "chain", "on": "enter", "action": {"signal": "opener.joined"}}]}
    response = api.post_json("/api/v1/buckets", body)
    assert response.status_code == 201, response.content
    assert response.json()["entry_limit"] == {"kind": "once_per_period", "period": "30d"}
    assert response.json()["reactions"] == body["reactions"]
    bucket = Bucket.objects.get()
    assert bucket.entry_period == timedelta(days=30)
    assert list(BucketReaction.objects.values_list("key", flat=True)) == ["hi", "hook", "chain"]


@pytest.mark.parametrize("changes, field", [
    ({"entry_limit": "once"}, "entry_limit"),
    ({"entry_limit": {"kind": "twice"}}, "entry_limit.kind"),
    ({"entry_limit": {"kind": "once_per_period"}}, "entry_limit.period"),
    ({"entry_limit": {"kind": "once_per_period", "period": "soon"}}, "entry_limit.period"),
    ({"entry_limit": {"kind": "once_per_period", "period": "9999d"}}, "entry_limit.period"),
    ({"entry_limit": {"kind": "once", "period": "1d"}}, "entry_limit.period"),
    ({"entry_limit": {"kind": "once", "every": "1d"}}, "entry_limit.every"),
    ({"reactions": {"id": "x"}}, "reactions"),
    ({"reactions": ["x"]}, "reactions[0]"),
    ({"reactions": [{"on": "enter", "action": {"signal": "s"}}]}, "reactions[0].id"),
    ({"reactions": [{"id": "Bad Id", "on": "enter", "action": {"signal": "s"}}]}, "reactions[0].id"),
    ({"reactions": [{"id": "a", "on": "dwell", "action": {"signal": "s"}}]}, "reactions[0].on"),
    ({"reactions": [{"id": "a", "on": "enter", "reasons": ["manual"], "action": {"signal": "s"}}]},
     "reactions[0].reasons"),
    ({"reactions": [{"id": "a", "on": "leave", "reasons": ["disabled"], "action": {"signal": "s"}}]},
     "reactions[0].reasons"),
    ({"reactions": [{"id": "a", "on": "enter"}]}, "reactions[0].action"),
    ({"reactions": [{"id": "a", "on": "enter", "action": {"signal": "s", "message": "m"}}]},
     "reactions[0].action"),
    ({"reactions": [{"id": "a", "on": "enter", "action": {"email": "m"}}]}, "reactions[0].action"),
    ({"reactions": [{"id": "a", "on": "enter", "action": {"signal": "$bucket.entered"}}]},
     "reactions[0].action.signal"),
    ({"reactions": [{"id": "a", "on": "enter", "action": {"signal": "x" * 201}}]},
     "reactions[0].action.signal"),
    ({"reactions": [{"id": "a", "on": "enter", "action": {"message": "no.such"}}]},
     "reactions[0].action.message"),
    ({"reactions": [{"id": "a", "on": "enter", "action": {"webhook": "bucket.welcome"}}]},
     "reactions[0].action.webhook"),
    ({"reactions": [{"id": "a", "on": "enter", "action": {"signal": "s"}},
                    {"id": "a", "on": "leave", "action": {"signal": "t"}}]}, "reactions[1].id"),
    ({"reactions": [{"id": "a", "on": "enter", "action": {"signal": "s"}, "when": "now"}]},
     "reactions[0].when"),
    ({"reactions": [{"id": f"r{i}", "on": "enter", "action": {"signal": "s"}} for i in range(51)]},
     "reactions"),
])
def test_invalid_entry_limits_and_reactions_are_400_at_their_paths(api, changes, field):
    in_app_template()
    response = api.post_json("/api/v1/buckets", {**BODY, **changes})
    assert response.status_code == 400, response.content
    assert field in [d["field"] for d in response.json()["error"]["details"]]
    assert not Bucket.objects.exists()


def test_a_bucket_answers_its_size_and_the_last_14_days(api, now):
    define()
    users = [EndUserFactory() for _ in range(2)]
    for user in users:
        signal(user)
    drain(now)
    body = api.get_json("/api/v1/buckets/openers").json()
    assert body["size"] == 2 and body["last_14_days"] == {"entered": 2, "left": 0, "days": 14}


def test_members_are_listed_newest_first_with_the_shared_cursor(api, now):
    define()
    for i in range(3):
        signal(EndUserFactory(external_id=f"m{i}"))
        drain(now + timedelta(seconds=i))
    first = api.get_json("/api/v1/buckets/openers/members?limit=2").json()
    assert [m["user"] for m in first["items"]] == ["ext:m2", "ext:m1"]
    assert first["items"][0]["entry_count"] == 1 and first["items"][0]["source"] == "signal"
    second = api.get_json(f"/api/v1/buckets/openers/members?limit=2&cursor={first['next_cursor']}").json()
    assert [m["user"] for m in second["items"]] == ["ext:m0"] and second["next_cursor"] is None


@pytest.mark.parametrize("query", ["limit=0", "limit=x", "cursor=forged", "limit=501"])
def test_bad_paging_of_members_is_a_400(api, query):
    define()
    assert api.get_json(f"/api/v1/buckets/openers/members?{query}").status_code == 400


def test_unknown_buckets_are_404_on_every_member_route(api):
    assert api.get_json("/api/v1/buckets/nope/members").status_code == 404
    assert api.post_json("/api/v1/buckets/nope/members", {"add": ["a"]}).status_code == 404


def test_a_users_buckets_are_current_and_past(api, now):
    define("pros", {"property": "plan", "op": "eq", "value": "pro"})
    define()
    user = EndUserFactory(external_id="ann", properties={"plan": "pro"})
    signal(user, "$identify", source="system", properties={"properties": {"plan": "pro"}})
    drain(now)
    user.properties = {"plan": "free"}
    user.save()
    signal(user, "$identify", source="system", properties={"properties": {"plan": "free"}})
    signal(user)
    drain(now + timedelta(minutes=1))
    body = api.get_json("/api/v1/users/ann/buckets").json()
    assert body["current"] == [{"bucket": "openers", "entered_at": (now + timedelta(minutes=1)).isoformat(),
                                "entry_count": 1}]
    assert [(p["bucket"], p["reason"]) for p in body["past"]] == [("pros", "criteria")]
    assert api.get_json("/api/v1/users/nobody/buckets").status_code == 404
    assert api.get_json("/api/v1/users/ext:/buckets").status_code == 400


@pytest.fixture
def vip(api):
    response = api.post_json("/api/v1/buckets", {"slug": "vip", "name": "VIP", "kind": "manual"})
    assert response.status_code == 201
    return Bucket.objects.get(slug="vip")


def test_an_admin_adds_and_removes_manual_members_and_unknown_refs_are_reported_by_index(api, vip):
    EndUserFactory(external_id="ann")
    EndUserFactory(external_id=None, email="bo@example.com")
    response = api.post_json("/api/v1/buckets/vip/members", {"add": ["ann", "ghost", "email:BO@example.com"]})
    assert response.status_code == 200, response.content
    assert response.json() == {"added": 2, "removed": 0,
                               "unknown": [{"field": "add[1]", "message": "no such user"}]}
    assert set(BucketMembership.objects.values_list("source", "status")) == {("manual", "active")}
    again = api.post_json("/api/v1/buckets/vip/members", {"add": ["ann"], "remove": ["email:bo@example.com"]})
    assert again.json() == {"added": 0, "removed": 1, "unknown": []}
    assert BucketMembership.objects.get(status="left").leave_reason == "manual"


@pytest.mark.parametrize("body, field", [
    ({}, "add"),
    ({"add": "ann"}, "add"),
    ({"add": [5]}, "add[0]"),
    ({"add": [""]}, "add[0]"),
    ({"add": ["ext:"]}, "add[0]"),
    ({"remove": ["x" * 400]}, "remove[0]"),
    ({"add": ["ann"], "drop": ["x"]}, "drop"),
    ({"add": ["u"] * 1001}, "add"),
    ({"add": ["u"] * 600, "remove": ["v"] * 401}, "add"),
])
def test_bad_member_changes_are_400_at_their_paths(api, vip, body, field):
    response = api.post_json("/api/v1/buckets/vip/members", body)
    assert response.status_code == 400
    assert field in [d["field"] for d in response.json()["error"]["details"]]
    assert not BucketMembership.objects.exists()


def test_a_user_both_added_and_removed_is_refused(api, vip):
    EndUserFactory(external_id="ann")
    body = {"add": ["ann"], "remove": ["ext:ann"]}
    assert api.post_json("/api/v1/buckets/vip/members", body).status_code == 400


def test_members_of_a_dynamic_or_disabled_bucket_are_not_changed_by_hand(api, vip):
    define()
    EndUserFactory(external_id="ann")
    assert api.post_json("/api/v1/buckets/openers/members", {"add": ["ann"]}).status_code == 409
    api.delete_json("/api/v1/buckets/vip")
    assert api.post_json("/api/v1/buckets/vip/members", {"add": ["ann"]}).status_code == 409


@pytest.mark.parametrize("scopes, get, post", [
    ("ingest", 403, 403), ("send", 403, 403), ("read", 200, 403), ("admin", 200, 200),
])
def test_every_scope_on_the_member_routes(api_as, vip, scopes, get, post):
    EndUserFactory(external_id="ann")
    client = api_as(scopes)
    assert client.get_json("/api/v1/buckets/vip/members").status_code == get
    assert client.get_json("/api/v1/users/ann/buckets").status_code == get
    assert client.post_json("/api/v1/buckets/vip/members", {"add": ["ann"]}).status_code == post


def test_the_member_routes_need_a_key(client, vip):
    assert client.get("/api/v1/buckets/vip/members").status_code == 401
    assert client.get("/api/v1/users/ann/buckets").status_code == 401


def test_a_member_change_that_is_not_json_is_refused(api, vip):
    assert api.post_json("/api/v1/buckets/vip/members", "{not json").status_code == 400
    assert api.post("/api/v1/buckets/vip/members", "add=ann", content_type="text/plain",
                    HTTP_AUTHORIZATION=f"Bearer {api.raw_key}").status_code == 415
    assert api.post_json("/api/v1/buckets/vip/members", [1, 2]).status_code == 400
