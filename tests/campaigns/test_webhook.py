from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.channels.webhook import RefusedTarget, resolve_target
from campaigns.models import Message
from campaigns.templates_as_code import save_template
from tests.factories import EndUserFactory

from .helpers import deliver, queue
from .receiver import webhook_receiver

pytestmark = pytest.mark.django_db


def _hook(url, key="orders.shipped"):
    doc = {"channel": "webhook", "category": "transactional", "default_locale": "en", "url": url,
           "variants": {"en": {"subject": "Shipped {{ context.order }}", "text": "Hi {{ user.id }}"}}}
    return save_template(key, doc, actor="test", now=timezone.now()).secret


@pytest.fixture
def allow_private(settings):
    settings.PULSE_WEBHOOK_ALLOW_PRIVATE = True
    settings.PULSE_WEBHOOK_TIMEOUT = 0.5


def test_a_webhook_is_signed_so_the_receiver_verifies_it_with_standardwebhooks(allow_private):
    secret = _hook("http://127.0.0.1:9/not-yet")
    with webhook_receiver(secret) as (url, received):
        _hook(url)  # a new version with the receiver's URL; the secret stays
        user = EndUserFactory(external_id="u-42")
        queued = queue(user, "orders.shipped", context={"order": "A-1"})
        assert deliver().sent == 1
    [hit] = received
    assert "error" not in hit, hit.get("error")
    assert hit["headers"]["webhook-id"] == f"msg_{queued.message_id}"
    payload = hit["verified"]
    assert payload["id"] == f"msg_{queued.message_id}" and payload["user"] == "ext:u-42"
    assert payload["subject"] == "Shipped A-1" and payload["text"] == "Hi u-42"
    assert payload["context"] == {"order": "A-1"} and payload["template"] == "orders.shipped"
    assert Message.objects.get(pk=queued.message_id).provider_id == f"msg_{queued.message_id}"


def test_a_receiver_with_another_secret_rejects_the_signature(allow_private):
    with webhook_receiver("whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY") as (url, received):
        _hook(url)
        queue(EndUserFactory(), "orders.shipped")
        deliver()
    assert received and "error" in received[0]


@pytest.mark.parametrize("host", ["127.0.0.1", "10.1.2.3", "192.168.0.5", "169.254.169.254", "::1",
                                  "localhost", "0.0.0.0", "::ffff:127.0.0.1", "fe80::1"])
def test_private_loopback_and_link_local_targets_are_refused(host, settings):
    settings.PULSE_WEBHOOK_ALLOW_PRIVATE = False
    with pytest.raises(RefusedTarget):
        resolve_target(host, 80)


def test_a_refused_target_fails_the_message_without_retries(settings):
    settings.PULSE_WEBHOOK_ALLOW_PRIVATE = False
    with webhook_receiver(None) as (url, received):
        _hook(url)
        queued = queue(EndUserFactory(), "orders.shipped")
        result = deliver()
    message = Message.objects.get(pk=queued.message_id)
    assert result.failed == 1 and not received
    assert message.status == "failed" and "private" in message.last_error and message.attempts == 1


def test_a_5xx_is_retried_with_backoff_then_given_up_after_five_attempts(allow_private):
    with webhook_receiver(None, status=503) as (url, received):
        _hook(url)
        queued = queue(EndUserFactory(), "orders.shipped")
        now = timezone.now()
        waits = []
        for _ in range(5):
            deliver(now)
            message = Message.objects.get(pk=queued.message_id)
            if message.status == "queued":
                waits.append(message.next_attempt_at - now)
                assert deliver(message.next_attempt_at - timedelta(seconds=1)).claimed == 0
                now = message.next_attempt_at
    assert waits == [timedelta(minutes=m) for m in (1, 2, 4, 8)]
    assert message.status == "failed" and message.attempts == 5 and "503" in message.last_error
    assert len(received) == 5 and len({r["headers"]["webhook-id"] for r in received}) == 1


def test_a_4xx_fails_at_once(allow_private):
    with webhook_receiver(None, status=410) as (url, received):
        _hook(url)
        queued = queue(EndUserFactory(), "orders.shipped")
        assert deliver().failed == 1
    assert Message.objects.get(pk=queued.message_id).status == "failed"


def test_a_timeout_is_retried(allow_private):
    with webhook_receiver(None, delay=2.0) as (url, received):
        _hook(url)
        queued = queue(EndUserFactory(), "orders.shipped")
        assert deliver().retried == 1
    message = Message.objects.get(pk=queued.message_id)
    assert message.status == "queued" and "timed out" in message.last_error
