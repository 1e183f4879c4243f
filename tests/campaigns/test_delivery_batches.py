"""Delivery is set-based per batch: its query count does not grow with the batch, the
cap holds across racing batches, and a stale worker writes nothing."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from campaigns.channels import Channel, Outcome
from campaigns.delivery import claim, deliver_batch
from campaigns.models import Message, Preference
from campaigns.outbox import queue_messages
from engagement.models import EndUser
from tests.concurrency import in_threads
from tests.conftest import postgres_only
from tests.factories import EndUserFactory

from .helpers import deliver, make_template

pytestmark = pytest.mark.django_db
# One delivery call of one batch and the pick from the head that finds nothing more: each
# batch's transaction (savepoint, idle limit, the pick between its two SET LOCALs of
# enable_sort on PostgreSQL, template versions, the cap's locks and count, the outcome writes,
# release), whatever the batch's size. The figure is the same for 10 and for 200 messages.
MAX_QUERIES_PER_BATCH = 20


class RecordingChannel(Channel):
    """An external channel plugged in through PULSE_CHANNELS: it answers from a script and
    notes, at each send, which messages of the batch were already recorded as sent."""

    name = "webhook"
    answers: dict[str, Outcome] = {}
    watch = False
    seen_sent: list[int] = []

    def send(self, message, rendered) -> Outcome:
        if RecordingChannel.watch:
            RecordingChannel.seen_sent.append(Message.objects.filter(status="sent").count())
        return RecordingChannel.answers.get(message.context.get("answer"), Outcome(ok=True, provider_id="p"))


@pytest.fixture
def recording_channel(settings):
    settings.PULSE_CHANNELS = {**settings.PULSE_CHANNELS,
                               "webhook": f"{__name__}.RecordingChannel"}
    RecordingChannel.seen_sent = []
    RecordingChannel.watch = False
    RecordingChannel.answers = {
        "retry": Outcome(ok=False, error="HTTP 503", retryable=True),
        "fail": Outcome(ok=False, error="HTTP 410"),
    }
    make_template("hooks.ping", channel="webhook", url="http://127.0.0.1:9/x", actions=[])
    return RecordingChannel


def _population(n: int, now, key="tips.weekly", **context):
    """n users, two marketing messages each (cap 1: one goes, one is capped); of every
    five users one is erased, one unsubscribed and one opted out of marketing."""
    users = EndUserFactory.create_batch(n)
    for i, user in enumerate(users):
        if i % 5 == 1:
            Preference.objects.create(user=user, unsubscribed_all=True, updated_at=now)
        elif i % 5 == 2:
            Preference.objects.create(user=user, categories={"marketing": False}, updated_at=now)
    EndUser.objects.filter(pk__in=[u.pk for i, u in enumerate(users) if i % 5 == 0]).update(deleted_at=now)
    rows = [{"user_id": u.pk, "template": key, "context": {"i": j, **context}} for u in users for j in (1, 2)]
    queue_messages(rows, now=now - timedelta(minutes=1))
    return users


def _delivery_queries(n: int, now, **kwargs) -> tuple[int, object]:
    """(queries, result) of delivering `_population(n)` in one batch."""
    _population(n, now, **kwargs)
    with CaptureQueriesContext(connection) as queries:
        result = deliver(now, batch_size=1000)
    return len(queries), result


def test_delivering_200_in_app_messages_costs_the_same_queries_as_delivering_10(
        now, settings, django_assert_max_num_queries):
    settings.PULSE_FREQUENCY_CAPS = {"marketing": (1, timedelta(days=7))}
    make_template()
    small, small_result = _delivery_queries(10, now)
    Message.objects.all().delete()
    _population(200, now)
    with django_assert_max_num_queries(MAX_QUERIES_PER_BATCH) as large:
        large_result = deliver(now, batch_size=1000)
    assert small == len(large)
    assert (small_result.sent, small_result.skipped, small_result.batches) == (4, 16, 1)
    assert (large_result.sent, large_result.skipped, large_result.lost) == (80, 320, 0)
    reasons = Message.objects.filter(status="skipped").values_list("skip_reason", flat=True)
    assert set(reasons) == {"user_erased", "unsubscribed_all", "category_opt_out", "frequency_cap"}
    assert Message.objects.filter(status="sent", subject="").count() == 0


def test_external_sends_are_per_message_but_their_outcomes_are_written_per_batch(
        now, settings, recording_channel):
    settings.PULSE_FREQUENCY_CAPS = {}
    small, _ = _delivery_queries(10, now, key="hooks.ping")
    Message.objects.all().delete()
    large, result = _delivery_queries(200, now, key="hooks.ping")
    assert small == large <= MAX_QUERIES_PER_BATCH
    assert (result.sent, result.skipped) == (160, 240)
    Message.objects.all().delete()
    recording_channel.watch = True
    _population(5, now, key="hooks.ping")
    assert deliver(now).sent == 4
    assert recording_channel.seen_sent == [0, 0, 0, 0]  # nothing is recorded until the batch is done


def test_each_outcome_kind_of_a_mixed_batch_is_recorded_with_its_own_values(now, settings,
                                                                           recording_channel):
    settings.PULSE_FREQUENCY_CAPS = {}
    recording_channel.watch = True
    make_template()
    user = EndUserFactory()
    rows = [{"user_id": user.pk, "template": "hooks.ping", "context": {"answer": a}, "idempotency_key": a}
            for a in ("ok", "retry", "fail")]
    rows.append({"user_id": user.pk, "template": "tips.weekly", "idempotency_key": "in-app",
                 "context": {"plan": "team"}})
    queue_messages(rows, now=now - timedelta(minutes=1))
    result = deliver(now)
    assert (result.sent, result.retried, result.failed) == (2, 1, 1)
    by_key = {m.idempotency_key: m for m in Message.objects.all()}
    assert by_key["ok"].status == "sent" and by_key["ok"].provider_id == "p"
    assert by_key["in-app"].status == "sent" and by_key["in-app"].text == "Plan: team"
    retried = by_key["retry"]
    assert retried.status == "queued" and retried.last_error == "HTTP 503"
    assert retried.next_attempt_at == now + settings.PULSE_MESSAGE_RETRY_BASE and retried.lease_token == ""
    failed = by_key["fail"]
    assert failed.status == "failed" and failed.last_error == "HTTP 410" and failed.subject == "Hi"
    assert recording_channel.seen_sent[0] == 1  # in-app was delivered before the external sends


def test_once_half_the_lease_has_passed_external_outcomes_are_recorded_as_they_come(
        now, settings, recording_channel):
    settings.PULSE_MESSAGE_LEASE = timedelta(0)  # half of it has always passed
    recording_channel.watch = True
    user = EndUserFactory()
    queue_messages([{"user_id": user.pk, "template": "hooks.ping", "idempotency_key": str(i)}
                    for i in range(3)], now=now - timedelta(minutes=1))
    token, ids = claim(now, 10)
    assert deliver_batch(token, ids, now=now).sent == 3
    assert recording_channel.seen_sent == [0, 1, 2]


def test_a_stale_worker_records_no_outcome_of_any_kind(now, settings):
    settings.PULSE_FREQUENCY_CAPS = {"marketing": (1, timedelta(days=7))}
    make_template()
    _population(5, now)
    stale_token, ids = claim(now, 100)
    later = now + settings.PULSE_MESSAGE_LEASE + timedelta(seconds=1)
    first = deliver(later)
    before = list(Message.objects.order_by("pk").values())
    again = deliver_batch(stale_token, ids, now=later)
    assert (again.sent, again.skipped, again.failed, again.retried) == (0, 0, 0, 0)
    assert list(Message.objects.order_by("pk").values()) == before
    assert (first.sent, first.skipped) == (2, 8)


def test_within_one_batch_the_earliest_messages_take_the_room_under_the_cap(now):
    make_template()  # marketing: at most 3 per 7 days
    user = EndUserFactory()
    queue_messages([{"user_id": user.pk, "template": "tips.weekly", "idempotency_key": f"k{i}"}
                    for i in range(5)], now=now - timedelta(minutes=1))
    assert deliver(now).sent == 3
    sent = Message.objects.filter(status="sent").order_by("pk").values_list("idempotency_key", flat=True)
    assert list(sent) == ["k0", "k1", "k2"]
    assert Message.objects.filter(skip_reason="frequency_cap").count() == 2


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_two_workers_racing_over_the_same_users_never_pass_a_cap_twice_and_never_deadlock(settings):
    settings.PULSE_FREQUENCY_CAPS = {"marketing": (1, timedelta(days=7))}
    make_template()
    now = timezone.now()
    users = EndUserFactory.create_batch(6)
    # interleaved, so both claims hold messages of every user
    rows = [{"user_id": u.pk, "template": "tips.weekly", "idempotency_key": f"{u.pk}-{j}"}
            for j in range(4) for u in (users if j % 2 else users[::-1])]
    queue_messages(rows, now=now - timedelta(minutes=1))
    barrier = threading.Barrier(2)

    def worker(_):
        token, ids = claim(now, 12)
        barrier.wait(timeout=10)
        deliver_batch(token, ids, now=now)

    assert in_threads(worker) == []
    sent = list(Message.objects.filter(status="sent").values_list("user_id", flat=True))
    assert sorted(sent) == sorted(u.pk for u in users)
    assert Message.objects.filter(status="skipped", skip_reason="frequency_cap").count() == 18
