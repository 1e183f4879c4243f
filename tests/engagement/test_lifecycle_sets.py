"""transition_many records its moves as sets; what it writes equals the row path's writes."""

from datetime import timedelta

import pytest
from django.db import transaction

from campaigns.models import Message
from engagement.loops.lifecycle import (
    TRIGGERS,
    Cause,
    Change,
    Moved,
    record_changes,
    record_moves,
    transition_many,
)
from engagement.models import EndUser, JobRun, LifecycleTransition, Signal, SignalQueue
from tests.engagement.lifecycle_helpers import NOW, S, user_in
from tests.factories import TenantFactory
from tests.rows import columns_but_id

pytestmark = pytest.mark.django_db
ACTOR = "job:daily_engagement"


def everything_written() -> dict:
    return {
        "transitions": columns_but_id(LifecycleTransition.objects.order_by("user_id")),
        "signals": columns_but_id(Signal.objects.order_by("user_id")),
        "queued": SignalQueue.objects.count(),
        "messages": columns_but_id(Message.objects.order_by("user_id")),
    }


def both_paths(trigger: str, moves: dict, *, act=True, run=None) -> tuple[dict, dict]:
    """The row path (one Change per user) and the set path, each from nothing written."""
    trigger_, cause = TRIGGERS[trigger], Cause(ACTOR, job_run=run)
    changes = [Change(uid, source, trigger_.moves[source], NOW, realtime=act)
               for source, ids in moves.items() for uid in ids]
    results = []
    for write in (lambda: record_changes(changes, trigger=trigger_, cause=cause, now=NOW, act=act),
                  lambda: record_moves(Moved(moves), trigger=trigger_, cause=cause, now=NOW, act=act)):
        with transaction.atomic():
            write()
            results.append(everything_written())
            transaction.set_rollback(True)
    return results[0], results[1]


def test_a_goodbye_set_writes_the_transitions_signals_and_messages_the_rows_write():
    tenant = TenantFactory()
    users = [user_in(inactive=timedelta(days=20)).pk for _ in range(4)]
    EndUser.objects.filter(pk__in=users[:2]).update(primary_tenant=tenant)
    run = JobRun.objects.create(kind="daily_engagement", window=NOW, trigger="schedule",
                                status="running", started_at=NOW)
    by_rows, by_set = both_paths("inactivity_14d", {S.ACTIVE: users}, run=run)
    assert by_rows == by_set
    assert len(by_set["messages"]) == 4 and by_set["queued"] == 4 and len(by_set["transitions"]) == 4


def test_a_response_from_two_source_states_matches_the_rows_and_history_neither_acts_nor_differs():
    active = [user_in(S.ACTIVE).pk for _ in range(2)]
    sent = [user_in(S.GOODBYE_SENT).pk for _ in range(2)]
    by_rows, by_set = both_paths("confused", {S.ACTIVE: active, S.GOODBYE_SENT: sent})
    assert by_rows == by_set and len(by_set["messages"]) == 4
    quiet_rows, quiet_set = both_paths("confused", {S.ACTIVE: active, S.GOODBYE_SENT: sent}, act=False)
    assert quiet_rows == quiet_set and quiet_set["messages"] == []
    assert {s["realtime"] for s in quiet_set["signals"]} == {False}


def test_a_move_of_nobody_writes_nothing_and_asks_nothing(django_assert_num_queries):
    with django_assert_num_queries(0):
        record_moves(Moved({S.ACTIVE: [], S.GOODBYE_SENT: []}), trigger=TRIGGERS["inactivity_14d"],
                     cause=Cause(ACTOR), now=NOW)


def test_transition_many_run_twice_moves_and_queues_once():
    users = [user_in(inactive=timedelta(days=20)) for _ in range(3)]
    first = transition_many("inactivity_14d", now=NOW, actor=ACTOR)
    again = transition_many("inactivity_14d", now=NOW, actor=ACTOR)
    assert first.user_ids == sorted(u.pk for u in users) and again.user_ids == []
    assert Message.objects.filter(source="lifecycle").count() == 3
    assert LifecycleTransition.objects.count() == 3 and Signal.objects.count() == 3
