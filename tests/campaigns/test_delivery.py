import threading
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from campaigns import delivery
from campaigns.delivery import claim, deliver_batch
from campaigns.models import Message, Preference
from campaigns.wake import WAKE_FLAG
from engagement.erase import erase_user
from engagement.redis_client import get_redis
from tests.concurrency import in_threads
from tests.conftest import postgres_only
from tests.factories import EndUserFactory

from .helpers import deliver, make_template, queue

pytestmark = pytest.mark.django_db


def _get(queued):
    return Message.objects.get(pk=queued.message_id)


def test_an_in_app_message_is_delivered_with_a_frozen_snapshot_of_what_the_user_saw(now):
    make_template()
    user = EndUserFactory(locale="de-CH", properties={"name": "Ada"})
    queued = queue(user, context={"plan": "team"})
    result = deliver(now)
    message = _get(queued)
    assert result.sent == 1 and message.status == "sent" and message.sent_at == now
    assert (message.locale, message.subject, message.text) == ("de", "Hallo Ada", "Tarif: team")
    assert message.rendered_actions == [{"id": "ok", "label": "Gut"}]
    make_template(variants={"en": {"subject": "changed", "text": "changed"}})
    user.properties = {"name": "Bob"}
    user.save()
    message.refresh_from_db()
    assert message.subject == "Hallo Ada" and message.template_version.number == 1


def test_a_message_scheduled_for_later_waits_until_then(now):
    make_template()
    queued = queue(EndUserFactory(), scheduled_for=now + timedelta(hours=1))
    assert deliver(now).claimed == 0
    assert deliver(now + timedelta(hours=1)).sent == 1
    assert _get(queued).status == "sent"


def test_a_dead_workers_message_is_reclaimed_after_its_lease_and_delivered_once(now, settings):
    make_template()
    queued = queue(EndUserFactory())
    dead_token, ids = claim(now, 10)  # the worker claims, then dies
    assert ids == [queued.message_id]
    assert deliver(now + timedelta(seconds=10)).claimed == 0  # the lease still holds
    later = now + settings.PULSE_MESSAGE_LEASE + timedelta(seconds=1)
    assert deliver(later).sent == 1
    # the dead worker comes back to life and tries to record its delivery: nothing happens
    assert deliver_batch(dead_token, ids, now=later).sent == 0
    message = _get(queued)
    assert message.status == "sent" and message.attempts == 2 and message.sent_at == later


def test_two_workers_never_claim_the_same_message(now):
    make_template()
    user = EndUserFactory()
    for key in "abc":
        queue(user, idempotency_key=key)
    _, first = claim(now, 2)
    _, second = claim(now, 2)
    assert len(first) == 2 and len(second) == 1 and not set(first) & set(second)


@pytest.mark.parametrize("setup, category, reason", [
    ("erased", "marketing", "user_erased"),
    ("erased+unsubscribed", "marketing", "user_erased"),
    ("unsubscribed", "marketing", "unsubscribed_all"),
    ("unsubscribed+opted_out", "marketing", "unsubscribed_all"),
    ("opted_out", "marketing", "category_opt_out"),
    ("opted_out+capped", "marketing", "category_opt_out"),
    ("capped", "marketing", "frequency_cap"),
    ("unsubscribed", "transactional", None),
    ("unsubscribed+opted_out", "system", None),
    ("capped", "transactional", None),
    ("erased", "transactional", "user_erased"),
])
def test_the_send_gate_applies_its_steps_in_order_each_with_its_reason(now, setup, category, reason):
    make_template(category=category)
    user = EndUserFactory()
    if "capped" in setup:
        for i in range(3):
            queue(user, idempotency_key=f"earlier-{i}", now=now - timedelta(days=1))
        assert deliver(now - timedelta(days=1)).sent == 3
    queued = queue(user, idempotency_key="this-one")
    if "unsubscribed" in setup or "opted_out" in setup:
        Preference.objects.create(user=user, unsubscribed_all="unsubscribed" in setup,
                                  categories={category: False} if "opted_out" in setup else {},
                                  updated_at=now)
    if "erased" in setup:
        erase_user(user, erased_by="test", now=now)
        Message.objects.filter(pk=queued.message_id).update(status="queued")  # as if queued after
    deliver(now)
    message = _get(queued)
    assert (message.status, message.skip_reason or None) == ("skipped" if reason else "sent", reason)


def test_the_frequency_cap_counts_across_channels_in_a_rolling_window(now):
    make_template("tips.a")
    make_template("tips.b", channel="webhook", url="http://127.0.0.1:9/x", actions=[])
    user = EndUserFactory()
    for i in range(2):
        queue(user, "tips.a", idempotency_key=f"a{i}", now=now - timedelta(days=9))
    deliver(now - timedelta(days=8))  # outside the window by then
    Message.objects.create(**{**Message.objects.values().first(), "id": None, "idempotency_key": "b",
                              "status": "sending", "gated_at": now - timedelta(hours=1),
                              "next_attempt_at": now + timedelta(hours=1),
                              "template_id": Message.objects.first().template_id})
    for i in range(3):
        queue(user, "tips.a", idempotency_key=f"c{i}")
    result = deliver(now)
    assert result.sent == 2 and result.skipped == 1
    assert Message.objects.filter(skip_reason="frequency_cap").count() == 1


def test_lifecycle_messages_are_exempt_from_the_frequency_cap(now):
    make_template()
    user = EndUserFactory()
    for i in range(5):
        queue(user, idempotency_key=f"l{i}", source="lifecycle")
    assert deliver(now).sent == 5


def test_the_cap_is_configurable(now, settings):
    settings.PULSE_FREQUENCY_CAPS = {"marketing": (1, timedelta(days=1))}
    make_template()
    user = EndUserFactory()
    queue(user, idempotency_key="a")
    queue(user, idempotency_key="b")
    result = deliver(now)
    assert (result.sent, result.skipped) == (1, 1)


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_the_frequency_cap_holds_when_two_workers_race_for_the_same_user(settings):
    settings.PULSE_FREQUENCY_CAPS = {"marketing": (1, timedelta(days=7))}
    make_template()
    user = EndUserFactory()
    for key in ("a", "b", "c", "d"):
        queue(user, idempotency_key=key)
    now = timezone.now()
    barrier = threading.Barrier(2)

    def worker(_):
        token, ids = claim(now, 2)
        barrier.wait(timeout=10)
        deliver_batch(token, ids, now=now)

    assert in_threads(worker) == []
    statuses = sorted(Message.objects.values_list("status", flat=True))
    assert statuses == ["sent", "skipped", "skipped", "skipped"]


def test_queueing_wakes_one_delivery_job_after_commit(django_capture_on_commit_callbacks):
    import django_rq

    make_template()
    queue_ = django_rq.get_queue("messages")
    queue_.empty()
    user = EndUserFactory()
    with django_capture_on_commit_callbacks(execute=True):
        queue(user, idempotency_key="a")
        queue(user, idempotency_key="b")
    with django_capture_on_commit_callbacks(execute=True):
        queue(user, idempotency_key="c")
    assert queue_.count == 1 and get_redis().get(WAKE_FLAG)
    assert queue_.jobs[0].func_name == "campaigns.jobs.deliver"


def test_the_delivery_job_clears_the_wake_flag_and_delivers(now):
    from campaigns.jobs import deliver as job

    make_template()
    queue(EndUserFactory())
    get_redis().set(WAKE_FLAG, "1")
    assert job()["sent"] == 1 and not get_redis().get(WAKE_FLAG)


def test_the_tick_hook_wakes_delivery_only_when_something_is_due(now):
    import django_rq

    queue_ = django_rq.get_queue("messages")
    queue_.empty()
    delivery.tick_hook(now)
    assert queue_.count == 0
    make_template()
    queue(EndUserFactory(), scheduled_for=now + timedelta(minutes=5))
    get_redis().delete(WAKE_FLAG)
    queue_.empty()
    delivery.tick_hook(now)
    assert queue_.count == 0
    with time_machine.travel(now + timedelta(minutes=6), tick=False):
        delivery.tick_hook(timezone.now())
    assert queue_.count == 1
