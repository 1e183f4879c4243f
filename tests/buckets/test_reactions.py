"""Reactions fire exactly once from transitions: entry limits, history, crashes at every step."""

from datetime import timedelta

import pytest
from django.utils import timezone

from buckets import dispatch as dispatch_module
from buckets import memberships
from buckets.dispatch import dispatch_pending
from buckets.models import BucketMembership, BucketTransition
from campaigns.models import Message
from engagement.models import EndUser, Signal
from tests.factories import EndUserFactory

from .helpers import (
    GOODBYE,
    PRO,
    WELCOME,
    bucket_messages,
    bucket_signals,
    define,
    drain,
    in_app_template,
    signal,
    webhook_template,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def welcome():
    return in_app_template()


def _flip(user, plan, at):
    EndUser.objects.filter(pk=user.pk).update(properties={"plan": plan})
    signal(user, "$identify", source="system", properties={"properties": {"plan": plan}}, at=at)


def _enter_leave_enter(user, now, step=timedelta(days=1)):
    """Three drains: pro (enter), free (leave), pro again (re-enter)."""
    for i, plan in enumerate(("pro", "free", "pro")):
        _flip(user, plan, now + i * step - timedelta(seconds=1))
        drain(now + i * step)


def test_an_enter_reaction_queues_its_message_keyed_by_the_transition(now, welcome):
    bucket = define(reactions=[WELCOME])
    user = EndUserFactory()
    signal(user)
    drain(now)
    (message,) = bucket_messages()
    transition = BucketTransition.objects.get()
    assert message.user_id == user.pk and message.template.key == "bucket.welcome"
    assert message.idempotency_key == f"bucket:{bucket.pk}:{transition.pk}:welcome"
    assert message.context["bucket"] == "openers" and message.context["entry_count"] == 1
    assert transition.fires and transition.dispatched_at == now
    assert transition.dispatch_log == [{"reaction": "welcome", "message_id": message.pk}]


def test_a_leave_reaction_records_a_signal_for_chaining_and_may_filter_by_reason(now):
    define("pros", PRO, reactions=[GOODBYE, {"id": "manual-only", "on": "leave", "reasons": ["manual"],
                                            "action": {"signal": "never.this"}}])
    user = EndUserFactory()
    _flip(user, "pro", now - timedelta(seconds=2))
    drain(now)
    _flip(user, "free", now)
    drain(now + timedelta(seconds=1))
    (lost,) = Signal.objects.filter(name="openers.lost")
    assert lost.source == "system" and lost.properties["bucket"] == "pros"
    assert not Signal.objects.filter(name="never.this").exists()


def test_a_webhook_reaction_queues_a_system_webhook_message(now):
    webhook_template()
    define(reactions=[{"id": "hook", "on": "enter", "action": {"webhook": "bucket.hook"}}])
    signal(EndUserFactory())
    drain(now)
    (message,) = bucket_messages()
    assert message.channel == "webhook" and message.category == "system"


@pytest.mark.parametrize("limit, fired", [
    pytest.param(None, 2, id="always fires every entry"),
    pytest.param({"kind": "once"}, 1, id="once fires the first entry only"),
    pytest.param({"kind": "once_per_period", "period": "3d"}, 1, id="a re-entry within the period is quiet"),
    pytest.param({"kind": "once_per_period", "period": "1d"}, 2, id="a re-entry after the period fires"),
])
def test_entry_limits_gate_the_enter_reactions_but_every_entry_is_recorded(now, welcome, limit, fired):
    fields = {"entry_limit": limit} if limit else {}
    bucket = define("pros", PRO, reactions=[WELCOME], **fields)
    user = EndUserFactory()
    _enter_leave_enter(user, now)
    assert list(BucketMembership.objects.filter(bucket=bucket).order_by("entry_count")
                .values_list("entry_count", flat=True)) == [1, 2]
    assert len(bucket_signals("$bucket.entered")) == 2
    assert len(bucket_messages()) == fired


def test_leaves_always_fire_whatever_the_entry_limit(now):
    define("pros", PRO, entry_limit={"kind": "once"}, reactions=[GOODBYE])
    user = EndUserFactory()
    _enter_leave_enter(user, now)
    _flip(user, "free", now + timedelta(days=3))
    drain(now + timedelta(days=3, seconds=1))
    assert Signal.objects.filter(name="openers.lost").count() == 2


@pytest.mark.parametrize("kind", ["import", "old", "replay"])
def test_transitions_caused_by_history_fire_nothing(now, welcome, kind):
    define(reactions=[WELCOME])
    user = EndUserFactory()
    if kind == "import":
        signal(user, source="import", realtime=False)
    elif kind == "old":
        signal(user, at=now - timedelta(hours=2), realtime=False)
    if kind == "replay":
        from engagement.pipeline import HandlerContext
        from engagement.replay import replay_signals  # noqa: F401 - the drain's own replay path

        signal(user)
        from buckets.realtime import evaluate_buckets
        evaluate_buckets(list(Signal.objects.all()), HandlerContext(now=now, replay=True))
    else:
        drain(now)
    transition = BucketTransition.objects.get()
    assert (transition.realtime, transition.fires, transition.dispatched_at) == (False, False, None)
    assert not bucket_messages()
    assert bucket_signals("$bucket.entered")[0].realtime is False


class Crash(BaseException):
    """A process dying: not an Exception, so nothing catches it and the transaction rolls back."""


STEPS = [
    (memberships, "insert_returning", 2),  # after the membership insert, before the transition
    (memberships, "record_system_signals", 1),  # after the transition, before its signal
    (dispatch_module, "queue_messages", 1),  # before the reaction's message
    (dispatch_module, "record_system_signals", 1),  # after the message, before the reaction signal
    (dispatch_module, "_mark_dispatched", 1),  # everything written but the dispatch mark
]


@pytest.mark.parametrize("module, name, nth", STEPS, ids=[f"{m.__name__}.{n}" for m, n, _ in STEPS])
def test_a_crash_between_any_two_steps_neither_loses_nor_repeats_a_reaction(
    now, welcome, monkeypatch, module, name, nth
):
    define(reactions=[WELCOME, {"id": "flag", "on": "enter", "action": {"signal": "opener.flagged"}}])
    user = EndUserFactory()
    signal(user)
    real, calls = getattr(module, name), []

    def crashing(*args, **kwargs):
        calls.append(1)
        if len(calls) == nth:
            raise Crash()
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, crashing)
    with pytest.raises(Crash):
        drain(now)
    assert not BucketMembership.objects.exists() and not bucket_messages()
    assert Signal.objects.pending().count() == 1  # the signal is still queued
    monkeypatch.setattr(module, name, real)
    drain(now)
    drain(now + timedelta(seconds=1))
    assert BucketTransition.objects.count() == 1 and len(bucket_messages()) == 1
    assert Signal.objects.filter(name="opener.flagged").count() == 1
    assert len(bucket_signals("$bucket.entered")) == 1


def test_the_dispatcher_sends_a_transition_committed_undispatched_exactly_once(now, welcome):
    define(reactions=[WELCOME])
    signal(EndUserFactory())
    drain(now)
    transition = BucketTransition.objects.get()
    # As if the dispatch mark were lost: the reaction's key makes a second dispatch create nothing.
    BucketTransition.objects.filter(pk=transition.pk).update(dispatched_at=None)
    assert dispatch_pending(now=now) == 1
    assert dispatch_pending(now=now) == 0
    assert Message.objects.count() == 1
    assert BucketTransition.objects.get().dispatched_at == now


def test_a_reaction_whose_template_went_missing_is_logged_and_the_others_still_go(now, welcome):
    define(reactions=[WELCOME, {"id": "flag", "on": "enter", "action": {"signal": "opener.flagged"}}])
    welcome.archived_at = timezone.now()
    welcome.save()
    signal(EndUserFactory())
    drain(now)
    log = BucketTransition.objects.get().dispatch_log
    assert log[0]["reaction"] == "welcome" and "missing or archived" in log[0]["error"]
    assert log[1] == {"reaction": "flag", "signal": "opener.flagged"}
    assert not bucket_messages()
