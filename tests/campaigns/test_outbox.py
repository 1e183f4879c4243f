import threading

import pytest
from django.db import transaction
from django.utils import timezone

from campaigns.models import Message
from campaigns.outbox import UnknownTemplate, queue_messages
from engagement.idempotency import IdempotencyConflict
from tests.concurrency import in_threads
from tests.conftest import postgres_only
from tests.factories import EndUserFactory

from .helpers import make_template, queue

pytestmark = pytest.mark.django_db


def test_the_same_key_never_queues_twice():
    make_template()
    user = EndUserFactory()
    first = queue(user, idempotency_key="k1", context={"plan": "pro"})
    again = queue(user, idempotency_key="k1", context={"plan": "pro"})
    assert first.created and not again.created and again.message_id == first.message_id
    assert Message.objects.count() == 1


def test_a_repeated_key_with_other_content_is_an_idempotency_conflict():
    make_template()
    user = EndUserFactory()
    queue(user, idempotency_key="k1", context={"plan": "pro"})
    with pytest.raises(IdempotencyConflict):
        queue(user, idempotency_key="k1", context={"plan": "free"})
    with pytest.raises(IdempotencyConflict):
        queue(EndUserFactory(), idempotency_key="k1", context={"plan": "pro"})
    assert Message.objects.count() == 1


def test_keys_are_unique_per_source():
    make_template()
    user = EndUserFactory()
    a = queue(user, idempotency_key="k1")
    b = queue(user, idempotency_key="k1", source="lifecycle")
    assert a.created and b.created and a.message_id != b.message_id


def test_queue_messages_reports_row_by_row_which_rows_were_new_in_one_call():
    make_template()
    u1, u2 = EndUserFactory(), EndUserFactory()
    queue(u1, idempotency_key="old")
    rows = [
        {"user_id": u1.pk, "template": "tips.weekly", "idempotency_key": "old"},
        {"user_id": u2.pk, "template": "tips.weekly", "idempotency_key": "new"},
        {"user_id": u2.pk, "template": "tips.weekly", "idempotency_key": "new"},
        {"user_id": u2.pk, "template": "tips.weekly", "idempotency_key": "new", "context": {"x": 1}},
        {"user_id": u2.pk, "template": "tips.weekly"},
        {"user_id": u2.pk, "template": "tips.weekly"},
    ]
    results = queue_messages(rows, now=timezone.now())
    assert [r.created for r in results] == [False, True, False, False, True, True]
    assert [r.conflict for r in results] == [False, False, False, True, False, False]
    assert results[1].message_id == results[2].message_id
    assert Message.objects.count() == 4


def test_an_unknown_or_archived_template_queues_nothing():
    make_template()
    user = EndUserFactory()
    with pytest.raises(UnknownTemplate):
        queue_messages([{"user_id": user.pk, "template": "tips.weekly"},
                        {"user_id": user.pk, "template": "nope"}], now=timezone.now())
    assert not Message.objects.exists()


def test_a_message_rolls_back_with_the_state_change_of_its_transaction():
    make_template()
    user = EndUserFactory()
    with pytest.raises(RuntimeError), transaction.atomic():
        queue(user, idempotency_key="k")
        raise RuntimeError("the caller's change failed")
    assert not Message.objects.exists()


def test_the_destination_and_category_are_resolved_at_queue_time():
    make_template(channel="webhook", url="https://hooks.example.com/a", actions=[])
    message = Message.objects.get(pk=queue(EndUserFactory()).message_id)
    assert (message.destination, message.category, message.channel) == (
        "https://hooks.example.com/a", "marketing", "webhook")


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_transactions_with_the_same_key_queue_one_message():
    make_template()
    user = EndUserFactory()
    barrier = threading.Barrier(2)
    results = []

    def worker(_):
        with transaction.atomic():
            barrier.wait(timeout=10)
            results.append(queue(user, idempotency_key="race"))

    assert in_threads(worker) == []
    assert sorted(r.created for r in results) == [False, True]
    assert len({r.message_id for r in results}) == 1
    assert Message.objects.count() == 1
