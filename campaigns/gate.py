"""The send gate, in order, each step with its own skip reason:

1. `user_erased`: the user was erased (or merged away since the claim);
2. `unsubscribed_all`, then `category_opt_out`: not for `transactional` and `system`;
3. `frequency_cap`: per user and category in a rolling window, counting the
   messages that passed the cap and are `sending` or `sent`, across channels.
   Defaults in PULSE_FREQUENCY_CAPS (at most 3 `marketing` per 7 days);
   `transactional`, `system` and lifecycle-machine messages are exempt.

The cap is race-safe without touching user rows (the drain updates those):
the check locks one `FrequencyLock` row per (user, category), counts, and
marks the message `gated_at` in the same short transaction, so a second
worker counting for the same user waits and then sees it.
"""

from datetime import datetime

from django.conf import settings
from django.db import connection, transaction

from engagement.bulk import insert_returning

from .models import Category, FrequencyLock, Message
from .preferences import block_reason

Reason = Message.SkipReason
EXEMPT_FROM_CAP = {Category.TRANSACTIONAL, Category.SYSTEM}


def early_reason(message, user, pref) -> str | None:
    """The steps that need no lock: erasure and preferences."""
    if user.deleted_at is not None:
        return Reason.USER_ERASED
    return block_reason(pref, message.category)


def cap_of(message) -> tuple[int, object] | None:
    """(limit, window) that applies to `message`, or None when it is exempt."""
    if message.category in EXEMPT_FROM_CAP or message.source == Message.Source.LIFECYCLE:
        return None
    return settings.PULSE_FREQUENCY_CAPS.get(message.category)


def pass_frequency_cap(message, token: str, *, now: datetime) -> bool:
    """Whether `message` may go out under its cap; marks it counted when it may."""
    cap = cap_of(message)
    if cap is None:
        return True
    limit, window = cap
    with transaction.atomic():
        _lock(message.user_id, message.category)
        counted = (
            Message.objects.filter(
                user_id=message.user_id, category=message.category, gated_at__gte=now - window,
                status__in=[Message.Status.SENDING, Message.Status.SENT],
            ).exclude(pk=message.pk).count()
        )
        if counted >= limit:
            return False
        return bool(Message.objects.filter(pk=message.pk, lease_token=token).update(gated_at=now))


def _lock(user_id: int, category: str) -> None:
    insert_returning(FrequencyLock, [{"user_id": user_id, "category": category}],
                     conflict_fields=["user_id", "category"])
    rows = FrequencyLock.objects.filter(user_id=user_id, category=category)
    if connection.vendor == "postgresql":
        list(rows.select_for_update().values_list("pk", flat=True))
    # SQLite: the transaction is IMMEDIATE, so it already holds the database's write lock.
