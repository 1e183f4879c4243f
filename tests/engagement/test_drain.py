import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from engagement.identity import Identifiers
from engagement.ingest import SignalInput, ingest_signals
from engagement.models import EndUser, Signal
from engagement.pipeline import process_signals, requeue_failed
from engagement.redis_client import get_redis
from engagement.wake import WAKE_FLAG
from tests.concurrency import in_threads
from tests.conftest import postgres_only
from tests.factories import EndUserFactory, SignalFactory

POISON = "tests.engagement.test_drain.explode_on_poison"


def explode_on_poison(signals, context):
    if any(s.name == "poison" for s in signals):
        raise ValueError("poisoned batch")


def _ingest(names, user="u1", when=None, source="api"):
    items = [SignalInput(ids=Identifiers(external_id=user), name=n, occurred_at=when) for n in names]
    return ingest_signals(items, source=source, now=timezone.now())


@pytest.mark.django_db
def test_the_drain_processes_every_pending_signal_and_sets_last_seen(now):
    _ingest(["a", "b", "c"])
    result = process_signals(batch_size=2)
    assert (result.batches, result.processed, result.failed) == (2, 3, 0)
    assert not Signal.objects.with_state().exclude(state="processed").exists()
    assert EndUser.objects.get().last_seen_at is not None


@pytest.mark.django_db
def test_last_seen_never_moves_backwards(now):
    user = EndUserFactory(last_seen_at=now)
    SignalFactory(user=user, occurred_at=now - timedelta(days=2))
    process_signals()
    user.refresh_from_db()
    assert user.last_seen_at == now


@pytest.mark.django_db
def test_first_seen_moves_back_to_older_history(now):
    user = EndUserFactory(first_seen_at=now)
    SignalFactory(user=user, occurred_at=now - timedelta(days=20), source="import")
    process_signals()
    user.refresh_from_db()
    assert user.first_seen_at == now - timedelta(days=20)


@pytest.mark.django_db
def test_system_signals_do_not_count_as_activity(now):
    user = EndUserFactory(last_seen_at=None)
    SignalFactory(user=user, name="$identify", source="system")
    process_signals()
    user.refresh_from_db()
    assert user.last_seen_at is None


@pytest.mark.django_db
def test_a_poison_signal_is_isolated_and_the_rest_proceed(settings):
    settings.PULSE_SIGNAL_HANDLERS = ["engagement.handlers.record_last_seen", POISON]
    _ingest(["ok"] * 6 + ["poison"] + ["ok"] * 5)
    result = process_signals(batch_size=100)
    assert (result.processed, result.failed) == (11, 1)
    failed = Signal.objects.with_state().get(state="failed")
    assert failed.name == "poison"
    assert "poisoned batch" in failed.error
    assert Signal.objects.with_state().filter(state="processed").count() == 11


@pytest.mark.django_db
def test_failed_signals_can_be_requeued_and_then_succeed(settings):
    settings.PULSE_SIGNAL_HANDLERS = [POISON]
    _ingest(["poison"])
    process_signals()
    settings.PULSE_SIGNAL_HANDLERS = ["engagement.handlers.record_last_seen"]
    assert requeue_failed() == 1
    process_signals()
    assert Signal.objects.get().state == "processed"


# 12 for the drain and record_last_seen, 7 for the lifecycle handler (create, wake per sleeping
# state, last activity, transitions), 1 for profiles' invalidation; no bucket is defined.
BOUND = 20


@pytest.mark.django_db
def test_the_drain_runs_a_bounded_number_of_queries_per_batch(django_assert_max_num_queries):
    items = [SignalInput(ids=Identifiers(external_id=f"u{i % 50}"), name="e") for i in range(400)]
    ingest_signals(items, source="api", now=timezone.now())
    with django_assert_max_num_queries(BOUND):
        result = process_signals(batch_size=400)
    assert result.processed == 400


@pytest.mark.django_db
def test_a_burst_of_ingest_commits_enqueues_one_drain_job(django_capture_on_commit_callbacks):
    for _ in range(5):
        with django_capture_on_commit_callbacks(execute=True):
            _ingest(["a"])
    assert get_redis().exists(WAKE_FLAG)
    assert get_redis().llen("rq:queue:signals") == 1


@pytest.mark.django_db
def test_ingest_commits_then_wakes_the_drain(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        _ingest(["a"])
    assert callbacks
    assert get_redis().llen("rq:queue:signals") == 1


@pytest.mark.django_db
def test_ingestion_succeeds_when_redis_is_down(settings, django_capture_on_commit_callbacks):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    settings.REDIS_SOCKET_TIMEOUT = 0.2
    get_redis.cache_clear()
    try:
        with django_capture_on_commit_callbacks(execute=True):
            result = _ingest(["a", "b"])
    finally:
        get_redis.cache_clear()
    assert result.accepted == 2
    assert Signal.objects.with_state().filter(state="pending").count() == 2


@pytest.mark.django_db
def test_the_drain_job_clears_the_wake_flag_so_no_wakeup_is_lost():
    from engagement.jobs import drain
    get_redis().set(WAKE_FLAG, "1")
    _ingest(["a"])
    assert drain()["processed"] == 1
    assert not get_redis().exists(WAKE_FLAG)


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_parallel_drains_never_process_a_signal_twice(settings):
    settings.PULSE_SIGNAL_HANDLERS = ["tests.engagement.test_drain.count_calls"]
    CALLS.clear()
    items = [SignalInput(ids=Identifiers(external_id=f"u{i % 40}"), name="e") for i in range(2000)]
    ingest_signals(items, source="api", now=timezone.now())
    barrier = threading.Barrier(4)

    def drain(_):
        barrier.wait(timeout=10)
        process_signals(batch_size=50)

    assert in_threads(drain, 4, timeout=120) == []
    assert sorted(CALLS) == sorted(Signal.objects.values_list("pk", flat=True))
    assert len(CALLS) == len(set(CALLS)) == 2000
    assert not Signal.objects.with_state().exclude(state="processed").exists()
    assert len(THREADS_SEEN) > 1


CALLS: list[int] = []
THREADS_SEEN: set[int] = set()
_lock = threading.Lock()


def count_calls(signals, context):
    with _lock:
        CALLS.extend(s.pk for s in signals)
        THREADS_SEEN.add(threading.get_ident())


@pytest.mark.django_db
def test_the_process_signals_command_shows_progress_and_a_summary(capsys):
    from django.core.management import call_command

    _ingest(["a", "b", "c"])
    call_command("process_signals", "--batch-size", "2", "--now", "2026-01-01T00:00:00Z")
    out, err = capsys.readouterr()
    assert out.strip().splitlines()[-1] == "batches=2 processed=3 failed=0 retries=0"
    assert "drained 3 signals" in err


@pytest.mark.django_db
@pytest.mark.parametrize("args", [["--batch-size", "0"], ["--now", "not-a-time"]])
def test_the_process_signals_command_refuses_bad_arguments(args):
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError):
        call_command("process_signals", *args)
