"""Pending signals live in a narrow queue; the log is append-only on the happy path."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from engagement.models import Signal, SignalQueue
from engagement.pipeline import process_signals, requeue_failed
from tests.factories import SignalFactory

POISON = "tests.engagement.test_drain.explode_on_poison"


@pytest.mark.django_db
def test_the_drain_empties_the_queue_and_derives_each_state(settings):
    settings.PULSE_SIGNAL_HANDLERS = ["engagement.handlers.record_last_seen", POISON]
    ok, poison = SignalFactory(name="ok"), SignalFactory(name="poison")
    assert SignalQueue.objects.count() == 2
    process_signals()
    assert not SignalQueue.objects.exists()
    states = dict(Signal.objects.with_state().values_list("name", "state"))
    assert states == {"ok": "processed", "poison": "failed"}
    assert (Signal.objects.get(pk=ok.pk).state, Signal.objects.get(pk=poison.pk).state) == (
        "processed",
        "failed",
    )
    assert list(Signal.objects.pending()) == []
    assert list(Signal.objects.failed()) == [poison]
    assert list(Signal.objects.processed()) == [ok]


@pytest.mark.django_db
def test_a_successful_signal_row_is_never_rewritten_by_the_drain():
    signal = SignalFactory(name="ok")
    before = Signal.objects.filter(pk=signal.pk).values().get()
    process_signals()
    assert Signal.objects.filter(pk=signal.pk).values().get() == before


@pytest.mark.django_db
def test_requeueing_a_failed_signal_twice_queues_it_once():
    failed = SignalFactory(state="failed")
    assert requeue_failed([failed.pk]) == 1
    assert requeue_failed([failed.pk]) == 0
    assert SignalQueue.objects.filter(signal=failed).count() == 1
    assert Signal.objects.get(pk=failed.pk).state == "pending"


@pytest.mark.django_db
def test_a_batch_that_fails_as_a_whole_goes_back_to_the_queue(monkeypatch):
    from engagement import pipeline

    SignalFactory.create_batch(3)

    def crash(*args, **kwargs):
        raise RuntimeError("worker lost its database")

    monkeypatch.setattr(pipeline, "run_isolated", crash)
    with pytest.raises(RuntimeError):
        process_signals()
    assert SignalQueue.objects.count() == 3


@pytest.mark.django_db(transaction=True)
def test_the_migration_moves_pending_and_failed_signals_out_of_the_log():
    executor = MigrationExecutor(connection)
    executor.migrate([("engagement", "0006_fewer_signal_indexes")])
    old = executor.loader.project_state([("engagement", "0006_fewer_signal_indexes")]).apps
    now = timezone.now()
    user = old.get_model("engagement", "EndUser").objects.create(external_id="m", first_seen_at=now)
    OldSignal = old.get_model("engagement", "Signal")
    for name, state in (("a", "pending"), ("b", "processing"), ("c", "processed"), ("d", "failed")):
        OldSignal.objects.create(
            user=user,
            name=name,
            occurred_at=now,
            received_at=now,
            state=state,
            processed_at=now if state in ("processed", "failed") else None,
            error="boom" if state == "failed" else "",
        )
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
    states = dict(Signal.objects.with_state().values_list("name", "state"))
    assert states == {"a": "pending", "b": "pending", "c": "processed", "d": "failed"}
    assert Signal.objects.get(name="d").error == "boom"
