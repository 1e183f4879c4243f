"""`deliver_messages`: claim due messages with a lease, gate, render, send, record.

A claim moves a batch of due messages (queued and due, or `sending` with a
lapsed lease: their worker died) to `sending` under a fresh lease token, in
one short transaction (`SKIP LOCKED` on PostgreSQL; SQLite's IMMEDIATE
transaction serializes claims). Every outcome is a conditional update on that
token, so a worker whose lease lapsed records nothing. For in-app messages
that update is the delivery itself: exactly once. External channels are at
least once and carry the message's stable id.

Failures that may pass (5xx, timeouts) are retried after PULSE_MESSAGE_RETRY_BASE
× 2ⁿ⁻¹ up to PULSE_MESSAGE_MAX_ATTEMPTS attempts, then `failed`.
"""

import logging
import time
import uuid
from datetime import datetime

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from . import gate, rendering
from .channels import Outcome, get_channel
from .models import Message
from .outcomes import DeliveryResult, Outcomes

log = logging.getLogger("pulse.messages")
Status = Message.Status
__all__ = ["DeliveryResult", "claim", "deliver_batch", "deliver_messages", "due", "tick_hook"]


def due(now: datetime):
    return Message.objects.filter(status__in=[Status.QUEUED, Status.SENDING], next_attempt_at__lte=now)


def tick_hook(now: datetime) -> None:
    """PULSE_TICK_HOOKS entry: wake delivery when something is due (catches lost wake-ups)."""
    from .wake import wake_delivery

    if due(now).exists():
        wake_delivery()


def claim(now: datetime, size: int) -> tuple[str, list[int]]:
    """(lease token, ids) of up to `size` due messages, now `sending` under that token."""
    token = uuid.uuid4().hex
    with transaction.atomic():
        rows = due(now).order_by("next_attempt_at", "pk")
        if connection.vendor == "postgresql":
            rows = rows.select_for_update(skip_locked=True)
        ids = list(rows.values_list("pk", flat=True)[:size])
        if ids:
            lease_end = now + settings.PULSE_MESSAGE_LEASE
            Message.objects.filter(pk__in=ids).update(
                status=Status.SENDING, lease_token=token, lease_expires_at=lease_end,
                next_attempt_at=lease_end, attempts=F("attempts") + 1,
            )
    return token, ids


def deliver_messages(*, now: datetime | None = None, batch_size: int | None = None,
                     max_batches: int | None = None) -> DeliveryResult:
    """Deliver due messages batch by batch until none is due (or `max_batches`)."""
    total = DeliveryResult()
    size = batch_size or settings.PULSE_DELIVERY_BATCH_SIZE
    while max_batches is None or total.batches < max_batches:
        moment = now or timezone.now()
        token, ids = claim(moment, size)
        if not ids:
            break
        total.add(deliver_batch(token, ids, now=moment))
    return total


def deliver_batch(token: str, ids: list[int], *, now: datetime) -> DeliveryResult:
    """Gate, render, send and record one claimed batch with a bounded number of queries.

    Stored-only (in-app) messages are recorded first, in one write per outcome
    kind. External sends follow; their outcomes are written together at the
    end, or one by one once half the lease has gone by, so a slow receiver
    cannot make a whole batch's sends lapse unrecorded (and be sent again)."""
    result = DeliveryResult(batches=1, claimed=len(ids))
    messages = list(
        Message.objects.filter(pk__in=ids, lease_token=token)
        .select_related("user", "template", "template_version")
        .order_by("pk")
    )
    reasons = gate.evaluate(messages, token, now=now)
    outcomes = Outcomes(token, now)
    external = []
    for message in messages:
        if reasons[message.pk]:
            outcomes.skip(message, reasons[message.pk])
        elif get_channel(message.channel).stores_only:
            _deliver(message, outcomes, now)
        else:
            external.append(message)
    outcomes.flush(result)
    half_lease = time.monotonic() + settings.PULSE_MESSAGE_LEASE.total_seconds() / 2
    for message in external:
        _deliver(message, outcomes, now)
        if time.monotonic() >= half_lease:
            outcomes.flush(result)
    outcomes.flush(result)
    return result


def _deliver(message, outcomes: Outcomes, now: datetime) -> None:
    """Render and send one message; its outcome joins the batch's (no query here)."""
    try:
        rendered = rendering.render(message.template_version, message.user, message.context)
    except Exception as exc:  # noqa: BLE001 - a broken template fails its message, not the batch
        log.warning("event=message_render_failed message_id=%s error_type=%s", message.pk,
                    type(exc).__name__)
        outcomes.fail(message, f"rendering failed: {type(exc).__name__}")
        return
    try:
        outcome = get_channel(message.channel).send(message, rendered)
    except Exception as exc:  # noqa: BLE001 - an unexpected channel error is retried
        log.warning("event=message_send_error message_id=%s error_type=%s", message.pk, type(exc).__name__)
        outcome = Outcome(ok=False, error=f"channel error: {type(exc).__name__}", retryable=True)
    if outcome.ok:
        outcomes.send(message, rendered, outcome.provider_id)
    elif outcome.retryable and message.attempts < settings.PULSE_MESSAGE_MAX_ATTEMPTS:
        delay = settings.PULSE_MESSAGE_RETRY_BASE * 2 ** (message.attempts - 1)
        outcomes.retry(message, outcome.error, at=now + delay)
    else:
        outcomes.fail(message, outcome.error, rendered)
