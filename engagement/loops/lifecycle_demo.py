"""Demo lifecycle states for `seed_demo` (PULSE_DEMO_SEEDERS): users in every state, as history.

The states come the way real ones do: the drain builds them from the demo's
imported activity (`user_activity`), then the real transitions move the users
who have been inactive past their threshold an hour before `now` — the
goodbye, and for three quarters of them an answer half an hour later
(confused, busy, no thanks). Everything runs with `act=False`: the
transitions and their `$lifecycle.changed` signals are history, nothing is
queued. Deterministic for a seed; a second run finds nobody left to move.
"""

import random
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q

from ..models import LifecycleState
from ..pipeline import process_signals
from .lifecycle import transition_many
from .thresholds import inactive_filter

ACTOR = "job:seed_demo"
ANSWERS = (None, "confused", "busy", "no_thanks")  # None: the goodbye stays unanswered


def seed_lifecycle(*, seed: int, days: int, now: datetime) -> dict:
    while process_signals(now=now, max_batches=10).batches:
        pass
    sent_at, answered_at = now - timedelta(hours=1), now - timedelta(minutes=30)
    due = list(
        LifecycleState.objects.filter(state=LifecycleState.State.ACTIVE).filter(inactive_filter(sent_at))
        .order_by("user__external_id", "user_id").values_list("user_id", flat=True)
    )
    random.Random(f"pulse-demo-lifecycle:{seed}").shuffle(due)
    signals = 0
    with transaction.atomic():
        moved = transition_many("inactivity_14d", now=sent_at, actor=ACTOR, where=Q(user_id__in=due),
                                act=False)
        signals += len(moved.user_ids)
        for index, answer in enumerate(ANSWERS):
            group = due[index :: len(ANSWERS)]
            if answer and group:
                signals += len(transition_many(answer, now=answered_at, actor=ACTOR,
                                               where=Q(user_id__in=group), act=False).user_ids)
    return {"signals": signals}
