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
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from . import gate, rendering
from .channels import Outcome, get_channel
from .models import Message
from .preferences import preferences_of

log = logging.getLogger("pulse.messages")
Status = Message.Status


@dataclass
class DeliveryResult:
    batches: int = 0
    claimed: int = 0
    sent: int = 0
    skipped: int = 0
    retried: int = 0
    failed: int = 0
    lost: int = 0  # outcomes not recorded because the lease had lapsed

    def add(self, other: "DeliveryResult") -> None:
        for name, value in asdict(other).items():
            setattr(self, name, getattr(self, name) + value)

    def as_dict(self) -> dict:
        return asdict(self)


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
    result = DeliveryResult(batches=1, claimed=len(ids))
    messages = list(
        Message.objects.filter(pk__in=ids, lease_token=token)
        .select_related("user", "template", "template_version")
        .order_by("pk")
    )
    prefs = preferences_of({m.user_id for m in messages})
    skips: dict[str, list[int]] = {}
    for message in messages:
        reason = gate.early_reason(message, message.user, prefs.get(message.user_id))
        if reason is None and not gate.pass_frequency_cap(message, token, now=now):
            reason = gate.Reason.FREQUENCY_CAP
        if reason:
            skips.setdefault(reason, []).append(message.pk)
            continue
        _send_one(message, token, now, result)
    for reason, skipped in skips.items():
        result.skipped += _finish(skipped, token, status=Status.SKIPPED, skip_reason=reason)
    return result


def _send_one(message, token: str, now: datetime, result: DeliveryResult) -> None:
    try:
        rendered = rendering.render(message.template_version, message.user, message.context)
    except Exception as exc:  # noqa: BLE001 - a broken template fails its message, not the batch
        log.warning("event=message_render_failed message_id=%s error_type=%s", message.pk,
                    type(exc).__name__)
        result.failed += _finish([message.pk], token, status=Status.FAILED,
                                 last_error=f"rendering failed: {type(exc).__name__}")
        return
    channel = get_channel(message.channel)
    try:
        outcome = channel.send(message, rendered)
    except Exception as exc:  # noqa: BLE001 - an unexpected channel error is retried
        log.warning("event=message_send_error message_id=%s error_type=%s", message.pk, type(exc).__name__)
        outcome = Outcome(ok=False, error=f"channel error: {type(exc).__name__}", retryable=True)
    content = {"locale": rendered.locale, "subject": rendered.subject, "text": rendered.text,
               "html": rendered.html, "rendered_actions": rendered.actions}
    if outcome.ok:
        done = _finish([message.pk], token, status=Status.SENT, sent_at=now,
                       provider_id=outcome.provider_id, last_error="", **content)
        result.sent += done
        result.lost += 1 - done
    elif outcome.retryable and message.attempts < settings.PULSE_MESSAGE_MAX_ATTEMPTS:
        delay = settings.PULSE_MESSAGE_RETRY_BASE * 2 ** (message.attempts - 1)
        result.retried += _finish([message.pk], token, status=Status.QUEUED, next_attempt_at=now + delay,
                                  last_error=outcome.error[:1000], gated_at=None)
    else:
        result.failed += _finish([message.pk], token, status=Status.FAILED,
                                 last_error=outcome.error[:1000], **content)


def _finish(ids: list[int], token: str, **changes) -> int:
    """Record an outcome for messages still held under `token`: the conditional update."""
    return Message.objects.filter(pk__in=ids, lease_token=token, status=Status.SENDING).update(
        lease_token="", lease_expires_at=None, **changes
    )
