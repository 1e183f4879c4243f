"""In-app messages are claimed by the row locks of their batch's transaction and delivered
under them: a second worker skips them, a dead worker's rows go back, each is written once."""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from campaigns import delivery, gate
from campaigns.models import Message
from tests.conftest import postgres_only
from tests.factories import EndUserFactory

from .helpers import deliver, make_template, queue

pytestmark = [postgres_only, pytest.mark.django_db(transaction=True)]


def _in_thread(target):
    errors = []

    def run():
        try:
            target()
        except Exception as exc:  # noqa: BLE001 - reported by the caller
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, errors


def _wait_until_gone(backend_pid: int) -> None:
    with connection.cursor() as cursor:
        for _ in range(200):
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [backend_pid])
            if not cursor.fetchone()[0]:
                return
            time.sleep(0.05)


def test_a_second_worker_skips_the_messages_a_batch_holds_locked():
    make_template()
    user = EndUserFactory()
    for key in "abc":
        queue(user, idempotency_key=key)
    now = timezone.now()
    picked, holding, done = [], threading.Event(), threading.Event()

    def first_worker():  # picks two, then stays inside its transaction until told
        with transaction.atomic():
            picked.extend(m.pk for m in delivery._pick(now, 2)[0])
            holding.set()
            done.wait(timeout=20)

    thread, errors = _in_thread(first_worker)
    assert holding.wait(timeout=20)
    second = delivery.deliver_due(now, 10)
    done.set()
    thread.join(timeout=30)
    assert not errors and len(picked) == 2
    assert second.sent == 1
    assert set(Message.objects.filter(status="sent").values_list("pk", flat=True)).isdisjoint(picked)


def test_a_worker_that_dies_inside_its_batch_leaves_its_messages_to_be_delivered_once():
    make_template()
    user = EndUserFactory()
    for key in "ab":
        queue(user, idempotency_key=key)
    now = timezone.now()

    backends = []

    def dying_worker():  # picks, then its connection goes away without a commit
        transaction.set_autocommit(False)
        delivery._pick(now, 10)
        backends.append(connection.connection.info.backend_pid)
        connection.close()

    thread, errors = _in_thread(dying_worker)
    thread.join(timeout=30)
    assert not errors
    _wait_until_gone(backends[0])  # its server process notices the closed socket a moment later
    assert deliver(now).sent == 2
    rows = list(Message.objects.values_list("status", "attempts", "lease_token"))
    assert rows == [("sent", 1, ""), ("sent", 1, "")]


def test_two_workers_delivering_at_once_send_every_message_once_and_keep_the_cap(settings):
    settings.PULSE_FREQUENCY_CAPS = {"marketing": (2, timedelta(days=7))}
    make_template()
    users = EndUserFactory.create_batch(4)
    for n in range(6):
        for user in users:
            queue(user, idempotency_key=f"{user.pk}-{n}")
    now = timezone.now()
    barrier = threading.Barrier(2)
    results = []

    def worker():
        barrier.wait(timeout=10)
        results.append(delivery.deliver_messages(now=now, batch_size=5))

    started = [_in_thread(worker) for _ in range(2)]
    for thread, _ in started:
        thread.join(timeout=60)
    assert not [e for _, errors in started for e in errors]
    assert sum(r.sent for r in results) == 8 and sum(r.skipped for r in results) == 16
    for user in users:
        assert Message.objects.filter(user=user, status="sent").count() == 2
    assert not Message.objects.exclude(attempts=1).exists()


def test_a_batch_transaction_is_cut_off_when_it_idles_longer_than_the_lease(settings):
    settings.PULSE_MESSAGE_LEASE = timedelta(seconds=42)
    with transaction.atomic(), connection.cursor() as cursor:
        delivery._limit_idle_transaction()
        cursor.execute("SHOW idle_in_transaction_session_timeout")
        assert cursor.fetchone()[0] == "42s"


def _holding_cap_lock(user, release: threading.Event, holding: threading.Event):
    """Another transaction holding `user`'s marketing cap lock until `release` is set."""
    def hold():
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [gate.cap_lock_key(user.pk, "marketing")])
            holding.set()
            release.wait(timeout=20)
    return _in_thread(hold)


def test_a_batch_leaves_the_messages_whose_cap_lock_another_worker_holds_due_and_delivers_the_rest():
    make_template()
    held_user, free_user = EndUserFactory.create_batch(2)
    held_id = queue(held_user, idempotency_key="held").message_id
    queue(free_user, idempotency_key="free")
    now = timezone.now()
    release, holding = threading.Event(), threading.Event()
    thread, errors = _holding_cap_lock(held_user, release, holding)
    assert holding.wait(timeout=20)
    first = delivery.deliver_due(now, 10)
    release.set()
    thread.join(timeout=30)
    assert not errors
    assert (first.claimed, first.sent, first.deferred, first.skipped) == (2, 1, 1, 0)
    held_message = Message.objects.get(pk=held_id)
    assert (held_message.status, held_message.attempts, held_message.subject) == ("queued", 0, "")
    second = delivery.deliver_due(now, 10)
    assert (second.sent, second.deferred) == (1, 0)
    assert list(Message.objects.values_list("status", "attempts").distinct()) == [("sent", 1)]


def test_a_batch_whose_every_cap_lock_is_held_waits_for_them_instead_of_deciding_nothing():
    make_template()
    user = EndUserFactory()
    queue(user, idempotency_key="only")
    now = timezone.now()
    release, holding = threading.Event(), threading.Event()
    thread, errors = _holding_cap_lock(user, release, holding)
    assert holding.wait(timeout=20)
    results = []
    worker, worker_errors = _in_thread(lambda: results.append(delivery.deliver_due(now, 10)))
    waiting = _wait_for_an_advisory_lock_wait()
    release.set()
    for started in (thread, worker):
        started.join(timeout=30)
    assert not errors and not worker_errors and waiting
    assert (results[0].sent, results[0].deferred) == (1, 0)


def _wait_for_an_advisory_lock_wait() -> bool:
    """Whether some backend came to wait for an advisory lock (polled, up to 10 s)."""
    with connection.cursor() as cursor:
        for _ in range(200):
            cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
            if cursor.fetchone()[0]:
                return True
            time.sleep(0.05)
    return False


def test_a_call_that_continued_past_a_message_left_for_its_cap_lock_comes_back_for_it():
    make_template()
    users = EndUserFactory.create_batch(6)
    for user in users:
        queue(user, idempotency_key=f"{user.pk}")
    now = timezone.now()
    release, holding = threading.Event(), threading.Event()
    thread, errors = _holding_cap_lock(users[0], release, holding)
    assert holding.wait(timeout=20)
    results = []
    worker, worker_errors = _in_thread(
        lambda: results.append(delivery.deliver_messages(now=now, batch_size=2)))
    waiting = _wait_for_an_advisory_lock_wait()  # the others sent, it waits for the last one
    release.set()
    for started in (thread, worker):
        started.join(timeout=30)
    assert not errors and not worker_errors and waiting
    assert (results[0].sent, results[0].deferred) == (6, 1)
    assert list(Message.objects.values_list("status", "attempts").distinct()) == [("sent", 1)]
