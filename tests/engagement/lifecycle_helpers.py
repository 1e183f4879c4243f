"""Shared builders for the lifecycle tests: users in a given state, and what they were sent."""

from datetime import UTC, datetime, timedelta

from campaigns.models import Message
from engagement.models import LifecycleState, Signal
from tests.factories import EndUserFactory

NOW = datetime(2026, 5, 4, 6, 0, tzinfo=UTC)
S = LifecycleState.State


def user_in(state=S.ACTIVE, *, inactive=timedelta(days=1), changed=None, user=None, **fields):
    """A user whose lifecycle is `state`, last active `inactive` before NOW."""
    user = user or EndUserFactory(first_seen_at=NOW - timedelta(days=60))
    last = NOW - inactive
    LifecycleState.objects.create(user=user, state=state, last_activity_at=last,
                                  changed_at=changed or last, **fields)
    return user


def goodbye_sent(ago=timedelta(hours=1), **kw):
    sent = NOW - ago
    return user_in(S.GOODBYE_SENT, inactive=timedelta(days=14) + ago, changed=sent, goodbye_sent_at=sent,
                   goodbye_expires_at=sent + timedelta(hours=48), **kw)


def state_of(user) -> str:
    return LifecycleState.objects.get(user=user).state


def lifecycle_messages(user=None):
    rows = Message.objects.filter(source="lifecycle")
    return rows.filter(user=user) if user is not None else rows


def changed_signals(user=None):
    rows = Signal.objects.filter(name="$lifecycle.changed")
    return rows.filter(user=user) if user is not None else rows
