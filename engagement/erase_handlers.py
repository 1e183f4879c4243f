"""The core's entries in PULSE_USER_ERASE_HANDLERS (the contract: extension_points.EraseHandler)."""

from .models import Membership, Signal


def erase_signals(erasure) -> dict:
    """Signals stay as anonymous counts (name, time, tenant); their payloads go, and so does
    the text of a handler's failure on them (an exception message may quote the payload).

    The merged users' signals too: a merge moves them, but whatever stayed on a
    loser (rows from before a merge handler existed, say) is the same person's."""
    count = Signal.objects.filter(user_id__in=erasure.user_ids).update(
        properties={}, context={}, idempotency_key=None, request_hash=None, error=""
    )
    return {"signals_scrubbed": count}


def count_memberships(erasure) -> dict:
    """Memberships hold no personal data; they stay so tenant sizes stay right."""
    return {"memberships_kept": Membership.objects.filter(user_id__in=erasure.user_ids).count()}
