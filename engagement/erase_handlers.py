"""The core's entries in PULSE_USER_ERASE_HANDLERS."""

from .models import Membership, Signal


def erase_signals(user, now) -> dict:
    """Signals stay as anonymous counts (name, time, tenant); their payloads go."""
    count = Signal.objects.filter(user=user).update(
        properties={}, context={}, idempotency_key=None, request_hash=None
    )
    return {"signals_scrubbed": count}


def count_memberships(user, now) -> dict:
    """Memberships hold no personal data; they stay so tenant sizes stay right."""
    return {"memberships_kept": Membership.objects.filter(user=user).count()}
