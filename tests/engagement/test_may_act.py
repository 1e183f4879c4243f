"""`HandlerContext.may_act`: history and replays inform derived state, they never act."""

from datetime import UTC, datetime, timedelta

import pytest

from engagement.identity import Identifiers
from engagement.ingest import SignalInput, ingest_signals
from engagement.models import Signal
from engagement.pipeline import HandlerContext, process_signals
from engagement.replay import replay_signals

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SEEN: dict[str, list[bool]] = {}


def record_may_act(signals, context):
    for signal in signals:
        SEEN.setdefault(signal.name, []).append(context.may_act(signal))


@pytest.fixture(autouse=True)
def recorder(settings):
    SEEN.clear()
    settings.PULSE_SIGNAL_HANDLERS = ["tests.engagement.test_may_act.record_may_act"]


@pytest.mark.parametrize(
    "realtime, replay, acts",
    [(True, False, True), (True, True, False), (False, False, False), (False, True, False)],
)
def test_only_a_live_signal_on_its_first_pass_may_act(realtime, replay, acts):
    context = HandlerContext(now=NOW, replay=replay)
    assert context.may_act(Signal(name="app.opened", realtime=realtime)) is acts


def test_the_handler_context_stays_immutable():
    context = HandlerContext(now=NOW)
    with pytest.raises(AttributeError):
        context.replay = True


def _ingest(name, *, source="api", occurred_at=None):
    item = SignalInput(ids=Identifiers(external_id="u1"), name=name, occurred_at=occurred_at or NOW)
    ingest_signals([item], source=source, now=NOW)


@pytest.mark.django_db
def test_the_drain_lets_fresh_signals_act_and_keeps_history_quiet():
    _ingest("fresh")
    _ingest("late", occurred_at=NOW - timedelta(hours=1, seconds=1))
    _ingest("imported", source="import")
    process_signals(now=NOW)
    assert SEEN == {"fresh": [True], "late": [False], "imported": [False]}


@pytest.mark.django_db
def test_a_replay_never_acts_even_on_signals_that_acted_live():
    _ingest("fresh")
    process_signals(now=NOW)
    SEEN.clear()
    replay_signals(now=NOW)
    assert SEEN == {"fresh": [False]}
