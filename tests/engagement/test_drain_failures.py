"""The drain fails honestly: database trouble leaves signals pending, data errors are isolated."""

import sqlite3

import psycopg.errors as pg
import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from engagement import retry
from engagement.identity import Identifiers
from engagement.ingest import SignalInput, ingest_signals
from engagement.models import Signal
from engagement.pipeline import process_signals
from engagement.retry import Backoff
from tests.conftest import postgres_only

HERE = "tests.engagement.test_drain_failures"
LAST_SEEN = "engagement.handlers.record_last_seen"
STATE: dict = {}


@pytest.fixture(autouse=True)
def sleeps(monkeypatch, settings):
    """Count the backoff's waits instead of waiting; a handful of retries by default."""
    settings.PULSE_DRAIN_RETRIES = 3
    settings.PULSE_DRAIN_BACKOFF_SECONDS = 0.5
    settings.PULSE_DRAIN_BACKOFF_MAX_SECONDS = 30.0
    STATE.clear()
    waited: list[float] = []
    monkeypatch.setattr(retry, "sleep", waited.append)
    return waited


def provoke_transient_error():
    """Raise a real transient error from the database under test."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL statement_timeout = 1")
            cursor.execute("SELECT pg_sleep(2)")
    else:
        # The drain holds the write lock; a second connection that will not wait is refused.
        other = sqlite3.connect(connection.settings_dict["NAME"], timeout=0)
        try:
            other.execute("BEGIN IMMEDIATE")
        finally:
            other.close()
    raise AssertionError("the database did not refuse")


def transient_once(signals, context):
    if not STATE.get("raised"):
        STATE["raised"] = True
        provoke_transient_error()


def always_transient(signals, context):
    STATE["calls"] = STATE.get("calls", 0) + 1
    raise pg.DeadlockDetected("deadlock detected")


def poison_then_transient_while_bisecting(signals, context):
    """A data error on the poisoned batch; one transient error on the first clean half."""
    if any(s.name == "poison" for s in signals):
        raise ValueError("poisoned batch")
    if len(signals) < STATE["size"] and not STATE.get("raised"):
        STATE["raised"] = True
        raise pg.SerializationFailure("could not serialize access")


def explode_on_poison(signals, context):
    if any(s.name == "poison" for s in signals):
        raise ValueError("poisoned batch")


def terminate_own_connection_once(signals, context):
    if not STATE.get("raised"):
        STATE["raised"] = True
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")


def _ingest(names):
    items = [SignalInput(ids=Identifiers(external_id="u1"), name=n) for n in names]
    ingest_signals(items, source="api", now=timezone.now())


def _states():
    return sorted(Signal.objects.with_state().values_list("state", flat=True).distinct())


@pytest.mark.django_db
def test_a_transient_error_with_no_retries_left_leaves_every_signal_pending_and_none_failed(
    settings, sleeps
):
    settings.PULSE_DRAIN_RETRIES = 0
    settings.PULSE_SIGNAL_HANDLERS = [LAST_SEEN, f"{HERE}.transient_once"]
    _ingest(["a", "b", "c", "d"])
    result = process_signals()
    assert result.stalled and (result.batches, result.processed, result.failed) == (0, 0, 0)
    assert _states() == ["pending"]
    assert not Signal.objects.filter(error__gt="").exists()
    assert sleeps == []
    again = process_signals()
    assert (again.stalled, again.processed, again.failed) == (False, 4, 0)
    assert _states() == ["processed"]


@pytest.mark.django_db
def test_a_transient_error_is_retried_after_a_wait_and_the_batch_then_succeeds(settings, sleeps):
    settings.PULSE_SIGNAL_HANDLERS = [LAST_SEEN, f"{HERE}.transient_once"]
    _ingest(["a", "b", "c"])
    result = process_signals()
    assert (result.processed, result.failed, result.retries, result.stalled) == (3, 0, 1, False)
    assert len(sleeps) == 1 and 0.25 <= sleeps[0] <= 0.5
    assert _states() == ["processed"]


@pytest.mark.django_db
def test_a_persisting_transient_error_is_retried_a_bounded_number_of_times_then_gives_up(
    settings, sleeps
):
    settings.PULSE_SIGNAL_HANDLERS = [f"{HERE}.always_transient"]
    settings.PULSE_DRAIN_RETRIES = 4
    settings.PULSE_DRAIN_BACKOFF_MAX_SECONDS = 1.5
    _ingest(["a", "b"])
    result = process_signals()
    assert result.stalled and result.retries == 4
    assert STATE["calls"] == 5, "the first try and four retries, never a bisection"
    ceilings = [0.5, 1.0, 1.5, 1.5]  # 0.5·2^n, capped
    assert len(sleeps) == 4
    assert all(c / 2 <= wait <= c for wait, c in zip(sleeps, ceilings, strict=True))
    assert _states() == ["pending"]


@pytest.mark.django_db
def test_a_transient_error_in_the_middle_of_bisection_undoes_the_failures_marked_so_far(
    settings, sleeps
):
    settings.PULSE_DRAIN_RETRIES = 0
    settings.PULSE_SIGNAL_HANDLERS = [LAST_SEEN, f"{HERE}.poison_then_transient_while_bisecting"]
    _ingest(["poison", "ok", "ok", "ok", "ok", "ok", "ok", "ok"])
    STATE["size"] = 8
    result = process_signals()
    assert result.stalled and result.failed == 0
    assert _states() == ["pending"], "the poison was marked failed during bisection, then rolled back"
    assert not Signal.objects.filter(error__gt="").exists()


@pytest.mark.django_db
def test_after_a_transient_error_during_bisection_the_retry_still_isolates_only_the_bad_signal(
    settings, sleeps
):
    settings.PULSE_SIGNAL_HANDLERS = [LAST_SEEN, f"{HERE}.poison_then_transient_while_bisecting"]
    _ingest(["ok", "ok", "ok", "ok", "ok", "poison", "ok", "ok"])
    STATE["size"] = 8
    result = process_signals()
    assert (result.processed, result.failed, result.retries) == (7, 1, 1)
    assert len(sleeps) == 1
    assert Signal.objects.with_state().get(state="failed").name == "poison"


@pytest.mark.django_db
def test_a_data_error_is_still_isolated_to_exactly_the_signal_that_causes_it(settings, sleeps):
    settings.PULSE_SIGNAL_HANDLERS = [LAST_SEEN, f"{HERE}.explode_on_poison"]
    _ingest(["ok"] * 9 + ["poison"] + ["ok"] * 3 + ["poison"])
    result = process_signals(batch_size=100)
    assert (result.processed, result.failed, result.retries) == (12, 2, 0)
    assert sleeps == [], "a data error is never waited on"
    failed = Signal.objects.with_state().filter(state="failed")
    assert set(failed.values_list("name", flat=True)) == {"poison"} and failed.count() == 2


@pytest.mark.django_db
def test_batches_committed_before_a_persisting_error_stay_processed(settings, sleeps):
    settings.PULSE_DRAIN_RETRIES = 1
    settings.PULSE_SIGNAL_HANDLERS = [f"{HERE}.fail_from_the_second_batch"]
    _ingest(["a", "b", "c", "d"])
    result = process_signals(batch_size=2)
    assert result.stalled and (result.batches, result.processed) == (1, 2)
    assert Signal.objects.with_state().filter(state="processed").count() == 2
    assert Signal.objects.with_state().filter(state="pending").count() == 2


def fail_from_the_second_batch(signals, context):
    STATE["batches"] = STATE.get("batches", 0) + 1
    if STATE["batches"] > 1:
        raise pg.LockNotAvailable("could not obtain lock on row")


@pytest.mark.django_db
def test_the_drain_job_ends_normally_and_reports_a_stalled_drain(settings, sleeps, caplog):
    from engagement.jobs import drain

    settings.PULSE_SIGNAL_HANDLERS = [f"{HERE}.always_transient"]
    _ingest(["a"])
    with caplog.at_level("INFO", logger="pulse"):
        outcome = drain()
    assert outcome["stalled"] is True and outcome["retries"] == 3 and outcome["failed"] == 0
    assert any("event=drain_stalled error_type=DeadlockDetected" in r.getMessage() for r in caplog.records)
    assert Signal.objects.with_state().get().state == "pending"


@pytest.mark.django_db
def test_the_process_signals_command_fails_when_the_drain_stalls(settings, sleeps, capsys):
    settings.PULSE_SIGNAL_HANDLERS = [f"{HERE}.always_transient"]
    _ingest(["a"])
    with pytest.raises(CommandError, match="still pending"):
        call_command("process_signals")
    assert capsys.readouterr().out.strip() == "batches=0 processed=0 failed=0 retries=3"


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_connection_lost_mid_batch_is_reopened_and_the_batch_retried(settings, sleeps):
    settings.PULSE_SIGNAL_HANDLERS = [LAST_SEEN, f"{HERE}.terminate_own_connection_once"]
    _ingest(["a", "b", "c"])
    result = process_signals()
    assert (result.processed, result.failed, result.retries) == (3, 0, 1)
    assert _states() == ["processed"]


@pytest.mark.parametrize("retry_number", [0, 1, 5, 6, 60, 10_000])
def test_a_backoff_delay_is_never_above_its_maximum(retry_number):
    backoff = Backoff(retries=3, base_seconds=0.5, max_seconds=30.0)
    ceiling = min(30.0, 0.5 * 2 ** min(retry_number, 32))
    for _ in range(50):
        assert ceiling / 2 <= backoff.delay(retry_number) <= ceiling <= 30.0


def test_the_default_backoff_waits_at_most_a_quarter_of_a_minute_per_batch():
    backoff = Backoff()
    worst = sum(min(backoff.max_seconds, backoff.base_seconds * 2**n) for n in range(backoff.retries))
    assert backoff.retries == 5 and worst == pytest.approx(15.5)


@pytest.mark.django_db
def test_a_replay_retries_a_transient_error_and_marks_nothing_failed(settings, sleeps):
    from engagement.replay import replay_signals

    _ingest(["a", "b", "c"])
    process_signals()
    settings.PULSE_SIGNAL_HANDLERS = [LAST_SEEN, f"{HERE}.transient_once"]
    result = replay_signals(now=timezone.now())
    assert (result.replayed, result.failed) == (3, 0)
    assert len(sleeps) == 1
    assert _states() == ["processed"]


@pytest.mark.django_db
def test_a_replay_stops_with_a_command_error_when_the_database_keeps_failing(settings, sleeps):
    _ingest(["a", "b"])
    process_signals()
    settings.PULSE_SIGNAL_HANDLERS = [f"{HERE}.always_transient"]
    with pytest.raises(CommandError, match="database kept failing"):
        call_command("replay_signals", "--now", timezone.now().isoformat())
    assert len(sleeps) == 3
    assert _states() == ["processed"], "no signal marked failed for the database's trouble"
