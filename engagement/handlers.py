"""The core's entries in PULSE_SIGNAL_HANDLERS."""

from django.db.models import Case, F, Q, Value, When

from .models import EndUser, Signal


def record_last_seen(signals, context) -> None:
    """Keep `last_seen_at` (never backwards) and `first_seen_at` (never forwards).

    System signals (`$identify`, `lifecycle.changed` …) are Pulse's own
    bookkeeping, not the user showing up, so they do not count. One UPDATE
    per batch whatever its size.
    """
    latest: dict[int, object] = {}
    earliest: dict[int, object] = {}
    for signal in signals:
        if signal.source == Signal.Source.SYSTEM:
            continue
        uid, at = signal.user_id, signal.occurred_at
        if uid not in latest or at > latest[uid]:
            latest[uid] = at
        if uid not in earliest or at < earliest[uid]:
            earliest[uid] = at
    if not latest:
        return
    EndUser.objects.filter(pk__in=list(latest)).update(
        last_seen_at=Case(
            *[
                When(Q(pk=uid) & (Q(last_seen_at__isnull=True) | Q(last_seen_at__lt=at)),
                     then=Value(at))
                for uid, at in latest.items()
            ],
            default=F("last_seen_at"),
        ),
        first_seen_at=Case(
            *[When(pk=uid, first_seen_at__gt=at, then=Value(at)) for uid, at in earliest.items()],
            default=F("first_seen_at"),
        ),
    )
