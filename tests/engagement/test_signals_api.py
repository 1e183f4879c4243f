from datetime import timedelta

import pytest

from engagement.models import EndUser, Membership, Signal, Tenant

pytestmark = pytest.mark.django_db


def _signal(**overrides):
    data = {"user": {"id": "u1"}, "name": "app.opened"}
    data.update(overrides)
    return data


def test_one_signal_is_accepted_and_stored(api):
    response = api.post_json(
        "/api/v1/signals",
        _signal(properties={"screen": "home"}, item="AI-1799", interaction="view", feature="issues"),
    )
    assert response.status_code == 202
    assert response.json() == {"accepted": 1, "duplicates": 0, "rejected": []}
    signal = Signal.objects.get()
    assert (signal.name, signal.item, signal.interaction, signal.feature, signal.source) == (
        "app.opened",
        "AI-1799",
        "view",
        "issues",
        "api",
    )
    assert signal.properties == {"screen": "home"}
    assert signal.state == "pending" and signal.realtime


def test_the_same_idempotency_key_twice_stores_one_signal(api):
    first = api.post_json("/api/v1/signals", _signal(idempotency_key="k-1"))
    second = api.post_json("/api/v1/signals", _signal(idempotency_key="k-1"))
    assert first.json()["accepted"] == 1
    assert second.status_code == 202
    assert second.json() == {"accepted": 0, "duplicates": 1, "rejected": []}
    assert Signal.objects.count() == 1


def test_duplicate_keys_inside_one_batch_store_one_signal(api):
    body = {"signals": [_signal(idempotency_key="k"), _signal(idempotency_key="k")]}
    assert api.post_json("/api/v1/signals", body).json() == {"accepted": 1, "duplicates": 1, "rejected": []}


def test_a_bad_item_is_rejected_by_index_and_its_neighbours_are_kept(api):
    body = {
        "signals": [
            _signal(),
            {"user": {"id": "u2"}, "name": 42, "colour": "red"},
            _signal(user={"email": "not-an-email"}),
            _signal(user={"anonymous_id": "a9"}),
        ]
    }
    response = api.post_json("/api/v1/signals", body)
    assert response.status_code == 202
    payload = response.json()
    assert payload["accepted"] == 2
    assert [r["index"] for r in payload["rejected"]] == [1, 2]
    fields = {e["field"] for e in payload["rejected"][0]["errors"]}
    assert fields == {"name", "colour"}
    assert Signal.objects.count() == 2


def test_a_batch_where_every_item_is_invalid_answers_400(api):
    response = api.post_json("/api/v1/signals", {"signals": [{"name": "x"}, {"user": {}}]})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"
    assert len(response.json()["error"]["details"]) == 2


def test_signals_from_more_than_five_minutes_ahead_are_rejected(api, now):
    body = {
        "signals": [
            _signal(occurred_at=(now + timedelta(minutes=10)).isoformat()),
            _signal(occurred_at=(now + timedelta(minutes=2)).isoformat()),
        ]
    }
    payload = api.post_json("/api/v1/signals", body).json()
    assert payload["accepted"] == 1
    assert payload["rejected"][0]["index"] == 0
    assert "future" in payload["rejected"][0]["errors"][0]["message"]


def test_signals_older_than_the_maximum_age_are_rejected(api, now, settings):
    settings.PULSE_MAX_SIGNAL_AGE = timedelta(days=7)
    body = {
        "signals": [
            _signal(occurred_at=(now - timedelta(days=8)).isoformat()),
            _signal(occurred_at=(now - timedelta(days=6)).isoformat()),
        ]
    }
    payload = api.post_json("/api/v1/signals", body).json()
    assert payload["accepted"] == 1 and payload["rejected"][0]["index"] == 0


def test_signals_older_than_the_realtime_horizon_are_history(api, now):
    api.post_json(
        "/api/v1/signals",
        {
            "signals": [
                _signal(occurred_at=(now - timedelta(hours=2)).isoformat(), idempotency_key="old"),
                _signal(idempotency_key="new"),
            ]
        },
    )
    assert Signal.objects.get(idempotency_key="api:old").realtime is False
    assert Signal.objects.get(idempotency_key="api:new").realtime is True


def test_a_tenant_key_creates_the_tenant_and_the_membership(api):
    api.post_json("/api/v1/signals", _signal(tenant="acme"))
    tenant = Tenant.objects.get(key="acme")
    assert Signal.objects.get().tenant_id == tenant.pk
    assert Membership.objects.filter(tenant=tenant, user__external_id="u1").exists()
    assert EndUser.objects.get(external_id="u1").primary_tenant_id == tenant.pk


def test_without_a_tenant_the_signal_takes_the_primary_tenant(api):
    api.post_json("/api/v1/users", {"id": "u1", "tenants": [{"key": "acme"}]})
    api.post_json("/api/v1/signals", _signal())
    assert Signal.objects.get(name="app.opened").tenant.key == "acme"


def test_a_batch_over_1000_signals_is_refused(api):
    response = api.post_json("/api/v1/signals", {"signals": [_signal()] * 1001})
    assert response.status_code == 413
    assert Signal.objects.count() == 0


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[]",
        b'"text"',
        b"null",
        b'{"signals": "x"}',
        b'{"signals": []}',
        b'{"signals": [], "extra": 1}',
        b'{"user": {"id": "u"}, "name": "x", "occurred_at": "yesterday"}',
        b'{"user": {"id": "u"}, "name": "x", "properties": [1]}',
        b'{"user": {"id": "u"}, "name": NaN}',
        b'{"user": {"id": "u\\u0000"}, "name": "x"}',
        b'{"user": {"id": ""}, "name": "x"}',
        b'{"user": {"id": "\\ud800"}, "name": "x"}',
        b'{"user": {"id": "u"}, "name": "x", "properties": {"k": "\\udfff"}}',
        b'{"user": {"id": "u"}, "name": "x", "occurred_at": "0001-01-01T00:00:00+05:00"}',
        b'{"user": {"id": "u"}, "name": "x", "occurred_at": "2026-13-45T00:00:00Z"}',
        b'{"user": {"id": "u"}, "name": "x", "occurred_at": "2026-11-30"}',
        b'{"user": {"id": "u"}, "name": "x", "occurred_at": "20261130"}',
        b'{"user": {"id": "u"}, "name": "x", "occurred_at": "2026-W48-1"}',
        b'\xff\xfe{"user": 1}',
        b'{"user": {"id": "u"}, "name": "x", "tenant": 5}',
    ],
)
def test_unusable_bodies_answer_400_with_the_error_shape(api, body):
    response = api.post_json("/api/v1/signals", body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert set(error) == {"code", "message", "details"}
    assert Signal.objects.count() == 0


@pytest.mark.parametrize("moment", ["2026-11-30", "20261130", "2026-W48-1"])
def test_a_date_without_a_time_is_refused_rather_than_guessed_as_midnight(api, moment):
    response = api.post_json("/api/v1/signals", {"user": {"id": "u"}, "name": "x", "occurred_at": moment})
    assert response.status_code == 400
    [item] = response.json()["error"]["details"]
    assert item["errors"] == [
        {"field": "occurred_at", "message": "must be an ISO 8601 date-time such as 2026-01-31T12:00:00Z"}
    ]
    timed = {"user": {"id": "u"}, "name": "x", "occurred_at": "2026-11-30T09:00:00Z"}
    assert api.post_json("/api/v1/signals", timed).status_code == 202


def test_deeply_nested_properties_are_rejected_not_crashing(api):
    nested = {}
    for _ in range(50):
        nested = {"n": nested}
    response = api.post_json("/api/v1/signals", _signal(properties=nested))
    assert response.status_code == 400


def test_recent_signals_show_on_the_user(api):
    api.post_json("/api/v1/signals", {"signals": [_signal(name=f"e{i}") for i in range(3)]})
    detail = api.get_json("/api/v1/users/u1").json()
    assert {s["name"] for s in detail["recent_signals"]} == {"e0", "e1", "e2"}


def test_an_identity_conflict_rejects_only_that_item(api):
    from tests.factories import EndUserFactory

    EndUserFactory(external_id="u1", email="a@x.io")
    EndUserFactory(external_id="u2", email="b@x.io")
    body = {"signals": [_signal(), _signal(user={"id": "u1", "email": "b@x.io"}), _signal(user={"id": "u2"})]}
    response = api.post_json("/api/v1/signals", body)
    assert response.status_code == 202
    payload = response.json()
    assert payload["accepted"] == 2
    assert payload["rejected"][0]["index"] == 1
    assert payload["rejected"][0]["errors"][0]["code"] == "identity_conflict"


def test_a_number_too_large_for_a_float_answers_400(api):
    response = api.post_json(
        "/api/v1/signals", b'{"user": {"id": "u"}, "name": "x", "properties": {"n": 1e400}}'
    )
    assert response.status_code == 400
    assert Signal.objects.count() == 0


def test_a_number_too_large_for_a_float_rejects_only_its_item(api):
    body = b'{"signals": [{"user": {"id": "u"}, "name": "x", "properties": {"n": 1e400}}, ' \
        b'{"user": {"id": "u"}, "name": "y", "properties": {"n": 1.5}}]}'
    payload = api.post_json("/api/v1/signals", body).json()
    assert payload["accepted"] == 1 and payload["rejected"][0]["index"] == 0
