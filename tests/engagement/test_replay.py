from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from engagement.identity import Identifiers
from engagement.ingest import SignalInput, ingest_signals
from engagement.models import EndUser, Signal
from engagement.pipeline import process_signals
from engagement.replay import replay_signals, resolve_handlers
from tests.factories import EndUserFactory, SignalFactory

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LAST_SEEN = "engagement.handlers.record_last_seen"
RECORDER = "tests.engagement.test_replay.record_calls"
BROKEN = "tests.engagement.test_replay.broken_until_fixed"
POISON = "tests.engagement.test_replay.explode_on_poison"
pytestmark = pytest.mark.django_db

calls: list[tuple[list[int], bool]] = []
bug = {"present": False}


def record_calls(signals, context):
    calls.append(([s.pk for s in signals], context.replay))


def broken_until_fixed(signals, context):
    if bug["present"] and any(s.name == "flaky" for s in signals):
        raise RuntimeError("a bug in the handler")


def explode_on_poison(signals, context):
    if any(s.name == "poison" for s in signals):
        raise ValueError("poisoned")


@pytest.fixture(autouse=True)
def _reset_recorders():
    calls.clear()
    bug["present"] = False


def ingest(user, names, when):
    items = [SignalInput(ids=Identifiers(external_id=user), name=n, occurred_at=when) for n in names]
    return ingest_signals(items, source="api", now=when)


def replay(*args):
    out = StringIO()
    call_command("replay_signals", "--now", NOW.isoformat(), *args, stdout=out, stderr=StringIO())
    return out.getvalue().strip()


def test_replay_rebuilds_last_seen_after_it_was_lost():
    seen = NOW - timedelta(hours=1)
    ingest("u1", ["a", "b"], seen)
    process_signals(now=NOW)
    EndUser.objects.update(last_seen_at=None)
    assert replay() == "replayed=2 failed=0 batches=1"
    assert EndUser.objects.get().last_seen_at == seen
    assert set(Signal.objects.with_state().values_list("state", flat=True)) == {"processed"}


def test_handlers_are_told_they_are_replaying(settings):
    settings.PULSE_SIGNAL_HANDLERS = [RECORDER]
    ingest("u1", ["a"], NOW)
    process_signals(now=NOW)
    replay_signals(now=NOW)
    assert [replaying for _, replaying in calls] == [False, True]


def test_replay_walks_the_signals_in_batches_by_id(settings):
    settings.PULSE_SIGNAL_HANDLERS = [RECORDER]
    ingest("u1", [f"s{i}" for i in range(5)], NOW)
    process_signals(now=NOW)
    calls.clear()
    assert replay("--batch-size", "2") == "replayed=5 failed=0 batches=3"
    ids = sorted(Signal.objects.values_list("pk", flat=True))
    assert [batch for batch, _ in calls] == [ids[:2], ids[2:4], ids[4:]]


def test_only_the_named_handler_runs_when_one_is_given(settings):
    settings.PULSE_SIGNAL_HANDLERS = [LAST_SEEN, RECORDER]
    ingest("u1", ["a"], NOW - timedelta(hours=1))
    process_signals(now=NOW)
    EndUser.objects.update(last_seen_at=None)
    calls.clear()
    assert replay("--handler", RECORDER) == "replayed=1 failed=0 batches=1"
    assert len(calls) == 1
    assert EndUser.objects.get().last_seen_at is None


def test_a_registered_handler_can_be_named_by_its_last_part(settings):
    settings.PULSE_SIGNAL_HANDLERS = [LAST_SEEN, RECORDER]
    assert [h.__name__ for h in resolve_handlers("record_calls")] == ["record_calls"]


def test_an_unknown_handler_is_a_clear_error():
    with pytest.raises(CommandError, match="unknown handler 'engagement.handlers.nope'.*registered"):
        replay("--handler", "engagement.handlers.nope")


def test_an_importable_handler_outside_the_registry_is_allowed(settings):
    settings.PULSE_SIGNAL_HANDLERS = [LAST_SEEN]
    ingest("u1", ["a"], NOW)
    process_signals(now=NOW)
    replay("--handler", RECORDER)
    assert len(calls) == 1


def test_replay_for_one_user_leaves_the_others_alone():
    when = NOW - timedelta(hours=2)
    ingest("u1", ["a"], when)
    ingest("u2", ["a"], when)
    process_signals(now=NOW)
    EndUser.objects.update(last_seen_at=None)
    assert replay("--user", "ext:u1") == "replayed=1 failed=0 batches=1"
    assert dict(EndUser.objects.values_list("external_id", "last_seen_at")) == {"u1": when, "u2": None}


def test_a_user_is_found_by_any_user_ref():
    EndUserFactory(external_id="u1", email="ada@example.com")
    ingest("u1", ["a"], NOW)
    process_signals(now=NOW)
    assert replay("--user", "email:Ada@Example.com") == "replayed=1 failed=0 batches=1"


def test_an_unknown_user_is_a_clear_error():
    with pytest.raises(CommandError, match="no user matches 'nobody'"):
        replay("--user", "nobody")


def test_since_and_until_bound_the_replay_by_occurrence_time(settings):
    settings.PULSE_SIGNAL_HANDLERS = [RECORDER]
    for days in (3, 2, 1):
        ingest("u1", [f"d{days}"], NOW - timedelta(days=days))
    process_signals(now=NOW)
    calls.clear()
    since, until = (NOW - timedelta(days=2)).isoformat(), (NOW - timedelta(days=1)).isoformat()
    assert replay("--since", since, "--until", until) == "replayed=1 failed=0 batches=1"
    ((batch, _),) = calls
    assert Signal.objects.get(pk=batch[0]).name == "d2"


def test_an_empty_range_is_refused():
    with pytest.raises(CommandError, match="--since must be before --until"):
        replay("--since", NOW.isoformat(), "--until", NOW.isoformat())


def test_failed_signals_replay_and_are_marked_processed_when_they_now_succeed(settings):
    settings.PULSE_SIGNAL_HANDLERS = [LAST_SEEN, BROKEN]
    bug["present"] = True
    ingest("u1", ["flaky", "fine"], NOW - timedelta(minutes=5))
    process_signals(now=NOW)
    assert Signal.objects.get(name="flaky").state == "failed"
    bug["present"] = False
    assert replay("--failed") == "replayed=1 failed=0 batches=1"
    flaky = Signal.objects.get(name="flaky")
    assert (flaky.state, flaky.error, flaky.failed_at) == ("processed", "", None)
    assert Signal.objects.get(name="fine").state == "processed"


def test_failed_signals_cannot_be_replayed_with_a_single_handler(settings):
    settings.PULSE_SIGNAL_HANDLERS = [LAST_SEEN, RECORDER]
    with pytest.raises(CommandError, match="drop --handler"):
        replay("--failed", "--handler", RECORDER)


def test_a_failed_signal_that_fails_again_stays_failed(settings):
    settings.PULSE_SIGNAL_HANDLERS = [POISON]
    ingest("u1", ["poison"], NOW)
    process_signals(now=NOW)
    assert replay("--failed") == "replayed=0 failed=1 batches=1"
    assert Signal.objects.get().state == "failed"


def test_a_plain_replay_skips_failed_and_pending_signals(settings):
    settings.PULSE_SIGNAL_HANDLERS = [RECORDER]
    SignalFactory(state="failed")
    SignalFactory(state="pending")
    processed = SignalFactory(state="processed")
    assert replay() == "replayed=1 failed=0 batches=1"
    assert calls == [([processed.pk], True)]
    assert sorted(Signal.objects.with_state().values_list("state", flat=True)) == [
        "failed",
        "pending",
        "processed",
    ]


def test_a_poison_signal_is_isolated_and_its_neighbours_still_replay(settings):
    ingest("u1", ["ok"] * 3 + ["poison"] + ["ok"] * 3, NOW - timedelta(minutes=1))
    process_signals(now=NOW)
    EndUser.objects.update(last_seen_at=None)
    settings.PULSE_SIGNAL_HANDLERS = [LAST_SEEN, POISON]
    assert replay() == "replayed=6 failed=1 batches=1"
    poison = Signal.objects.get(name="poison")
    assert poison.state == "failed" and "poisoned" in poison.error
    assert EndUser.objects.get().last_seen_at is not None


def test_signals_arriving_during_a_replay_are_left_to_the_drain(settings):
    settings.PULSE_SIGNAL_HANDLERS = [RECORDER]
    ingest("u1", ["a", "b"], NOW)
    process_signals(now=NOW)
    calls.clear()

    def ingest_more(done, total):
        if done == 1:
            later = SignalFactory(state="processed")
            assert later.pk > max(Signal.objects.exclude(pk=later.pk).values_list("pk", flat=True))

    result = replay_signals(now=NOW, batch_size=1, progress=ingest_more)
    assert (result.replayed, result.batches) == (2, 2)


def test_replay_costs_a_bounded_number_of_queries_per_batch(django_assert_max_num_queries, settings):
    # Replay's own cost, measured with the core handler (each handler's is test_handler_contracts').
    settings.PULSE_SIGNAL_HANDLERS = ["engagement.handlers.record_last_seen"]
    for n in range(60):
        ingest(f"u{n}", ["a", "b"], NOW - timedelta(minutes=n))
    process_signals(now=NOW)
    # the range, then at most 7 per batch (4 full batches and a last look that finds none); one
    # of them is the buckets' candidate index version read (no bucket is defined here)
    with django_assert_max_num_queries(1 + 5 * 7):
        result = replay_signals(now=NOW, batch_size=30)
    assert (result.batches, result.replayed) == (4, 120)
