"""The official Segment and RudderStack Python SDKs, unchanged, pointed at a live Pulse.

Each SDK runs with its default settings (a background consumer thread and
`flush()`), in `sync_mode`, and with gzip on and off. Only the SDKs' HTTP
session is wrapped, to see what they actually sent.
"""

import pytest
import rudderstack.analytics.request as rudder_request
import segment.analytics.request as segment_request
from django.utils import timezone
from rudderstack.analytics.client import Client as RudderClient
from segment.analytics.client import Client as SegmentClient

from engagement import keys
from engagement.identity import Identifiers, find_user
from engagement.models import Membership, Signal, Tenant

SDKS = {
    "segment": (SegmentClient, segment_request),
    "rudderstack": (RudderClient, rudder_request),
}
DEFAULT_GZIP = {"segment": False, "rudderstack": True}


@pytest.fixture
def write_key(transactional_db):
    _, raw = keys.create_api_key("sdk", "ingest", now=timezone.now())
    return raw


@pytest.fixture
def sent(monkeypatch):
    """Every request the SDKs make: (path, headers), recorded around their own session."""
    requests = []
    for _, module in SDKS.values():
        original = module._session.post

        def post(url, *args, _original=original, **kwargs):
            requests.append((url, kwargs.get("headers", {})))
            return _original(url, *args, **kwargs)

        monkeypatch.setattr(module._session, "post", post)
    return requests


def make_client(sdk, *, host, write_key, errors, sync_mode, gzip=None):
    cls, _ = SDKS[sdk]
    options = {"host": host, "on_error": lambda exc, batch: errors.append((exc, batch))}
    if sync_mode:
        options["sync_mode"] = True
    if gzip is not None:
        options["gzip"] = gzip
    return cls(write_key, **options)


def send_a_session(client):
    client.page(anonymous_id="anon-1", name="Pricing", category="Docs", properties={"url": "/pricing"})
    client.track(anonymous_id="anon-1", event="Browsed", properties={"section": "plans"})
    client.identify(user_id="u1", traits={"email": "Ann@Example.com", "plan": "pro"})
    client.alias(previous_id="anon-1", user_id="u1")
    client.group(user_id="u1", group_id="acme", traits={"name": "Acme Inc", "seats": 12})
    client.track(user_id=42, event="Order Completed", properties={"total": 30})
    client.screen(user_id="u1", name="Home")


def assert_the_session_landed():
    user = find_user(Identifiers(external_id="u1"))
    assert user is not None
    assert find_user(Identifiers(anonymous_id="anon-1")) == user
    assert user.email == "ann@example.com"
    assert user.properties["plan"] == "pro"

    signals = Signal.objects.filter(source=Signal.Source.SEGMENT)
    assert sorted(signals.values_list("name", flat=True)) == [
        "$page", "$screen", "Browsed", "Order Completed"
    ]
    assert set(signals.exclude(name="Order Completed").values_list("user_id", flat=True)) == {user.pk}
    assert signals.get(name="Order Completed").user.external_id == "42"
    assert signals.get(name="$page").properties == {"url": "/pricing", "name": "Pricing", "category": "Docs"}
    assert signals.get(name="Browsed").context["library"]["name"] == "analytics-python"
    assert all(s.idempotency_key.startswith("seg:") for s in signals)

    tenant = Tenant.objects.get(key="acme")
    assert tenant.name == "Acme Inc"
    assert tenant.traits["seats"] == 12
    assert Membership.objects.filter(user=user, tenant=tenant).exists()
    system = Signal.objects.filter(source=Signal.Source.SYSTEM)
    for name in ("$identify", "$group", "$alias"):
        assert system.filter(name=name, user=user).count() == 1, name


CASES = [
    # (sdk, sync_mode, gzip): None keeps the SDK's default
    ("segment", False, None),
    ("segment", False, True),
    ("segment", True, None),
    ("segment", True, True),
    ("rudderstack", False, None),
    ("rudderstack", True, None),
    ("rudderstack", True, False),
]


@pytest.mark.parametrize(("sdk", "sync_mode", "gzip"), CASES,
                         ids=[f"{s}-{'sync' if m else 'default'}-gzip-{g}" for s, m, g in CASES])
def test_the_sdk_unchanged_stores_a_whole_session(live_server, write_key, sent, sdk, sync_mode, gzip):
    errors = []
    client = make_client(sdk, host=live_server.url, write_key=write_key, errors=errors,
                         sync_mode=sync_mode, gzip=gzip)

    send_a_session(client)
    if not sync_mode:
        client.flush()
        client.join()

    assert errors == []
    assert sent and all(url == f"{live_server.url}/v1/batch" for url, _ in sent)
    gzipped = DEFAULT_GZIP[sdk] if gzip is None else gzip
    assert all((headers.get("Content-Encoding") == "gzip") == gzipped for _, headers in sent)
    assert_the_session_landed()


@pytest.mark.parametrize("sdk", SDKS)
def test_a_replayed_batch_from_the_sdk_stores_nothing_twice(live_server, write_key, sdk):
    errors = []
    client = make_client(sdk, host=live_server.url, write_key=write_key, errors=errors, sync_mode=True)

    for _ in range(2):
        client.track(user_id="u1", event="Paid", message_id="m-1")
        client.identify(user_id="u1", traits={"plan": "pro"}, message_id="m-2")

    assert Signal.objects.filter(name="Paid").count() == 1
    assert Signal.objects.filter(name="$identify").count() == 1


@pytest.mark.parametrize("sdk", SDKS)
def test_a_wrong_write_key_reaches_on_error_as_a_final_401(live_server, transactional_db, sdk):
    errors = []
    client = make_client(sdk, host=live_server.url, write_key="pk_nope_wrong", errors=errors,
                         sync_mode=False)

    client.track(user_id="u1", event="Lost")
    client.flush()
    client.join()

    assert len(errors) == 1
    exc, batch = errors[0]
    assert (exc.status, exc.code) == (401, "unauthorized")
    assert batch[0]["event"] == "Lost"
    assert not Signal.objects.exists()
