"""`deliver_messages`: claim due messages, gate, render, send, record.

Each batch starts in one short transaction that picks due messages (queued and
due, or `sending` with a lapsed lease: their worker died) and locks them
(`SELECT … FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite's IMMEDIATE
transaction serializes batches).

- In-app messages (stored-only channels) are delivered inside that
  transaction, under its row locks: gate, render, record. The one write per
  message is its outcome, and the row locks are its claim: a second worker
  skips the rows, and a worker that dies lets them go with its connection
  (one that hangs is cut off after PULSE_MESSAGE_LEASE by
  `idle_in_transaction_session_timeout`). The outcome write is the delivery
  itself, so it happens exactly once.
- External messages are moved to `sending` under a fresh lease token in the
  same transaction (`claim` does the same on its own); after it commits they
  are sent outside any transaction and every outcome is a conditional update
  on that token (campaigns/outcomes.py), so a worker whose lease lapsed
  records nothing. They are at least once and carry the message's stable id.

A batch costs the same few queries whatever its size: no query runs per
message (an external send is its own).

Failures that may pass (5xx, timeouts) are retried after PULSE_MESSAGE_RETRY_BASE
× 2ⁿ⁻¹ up to PULSE_MESSAGE_MAX_ATTEMPTS attempts, then `failed`.
"""

import logging
import time
import uuid
from datetime import datetime

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from . import gate, rendering
from .channels import Outcome, get_channel
from .claimed import attach_versions, load, pick
from .id_lists import ids_match
from .models import Message
from .outcomes import DeliveryResult, Outcomes

log = logging.getLogger("pulse.messages")
Status = Message.Status
__all__ = ["DeliveryResult", "claim", "deliver_batch", "deliver_due", "deliver_messages", "due", "tick_hook"]


def due(now: datetime):
    return Message.objects.filter(status__in=[Status.QUEUED, Status.SENDING], next_attempt_at__lte=now)


def tick_hook(now: datetime) -> None:
    """PULSE_TICK_HOOKS entry: wake delivery when something is due (catches lost wake-ups)."""
    from .wake import wake_delivery

    if due(now).exists():
        wake_delivery()


def claim(now: datetime, size: int) -> tuple[str, list[int]]:
    """(lease token, ids) of up to `size` due messages, now `sending` under that token.

    One `UPDATE … WHERE id IN (pick) RETURNING id` in a short transaction; the pick
    skips rows another worker is claiming (`SKIP LOCKED`) on PostgreSQL, and on SQLite
    the IMMEDIATE transaction serializes claims."""
    token = uuid.uuid4().hex
    lease_end = connection.ops.adapt_datetimefield_value(now + settings.PULSE_MESSAGE_LEASE)
    table = connection.ops.quote_name(Message._meta.db_table)
    postgresql = connection.vendor == "postgresql"
    lock, materialized = (" FOR UPDATE SKIP LOCKED", "MATERIALIZED ") if postgresql else ("", "")
    # The pick is a CTE so it runs once: as a plain `IN (subquery)` PostgreSQL may run the
    # `LIMIT … SKIP LOCKED` subquery again (a rescan picks again), and one claim then took
    # more than `size` messages (as in engagement.pipeline.claim_batch).
    sql = (
        f"WITH picked AS {materialized}(SELECT id FROM {table} WHERE status IN (%s, %s)"
        f" AND next_attempt_at <= %s ORDER BY next_attempt_at, id LIMIT %s{lock})"
        f" UPDATE {table} SET status = %s, lease_token = %s, lease_expires_at = %s, next_attempt_at = %s,"
        f" attempts = attempts + 1 WHERE id IN (SELECT id FROM picked) RETURNING id"
    )
    params = [Status.QUEUED, Status.SENDING, connection.ops.adapt_datetimefield_value(now), size,
              Status.SENDING, token, lease_end, lease_end]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        ids = sorted(pk for (pk,) in cursor.fetchall())
    return token, ids


def deliver_messages(*, now: datetime | None = None, batch_size: int | None = None,
                     max_batches: int | None = None) -> DeliveryResult:
    """Deliver due messages batch by batch until none is due (or `max_batches`).

    Each pick continues after the last (next_attempt_at, id) the previous one took, so it
    does not walk again the due index's entries of the messages already delivered (until
    they are pruned each still costs a heap visit, and a backlog made every pick slower than
    the last). When a pick comes back short (the tail is reached) the next one starts over
    from the head, which collects what was passed over (rows another worker held, messages
    left due for their cap lock); the call ends when a pick from the head finds nothing."""
    total = DeliveryResult()
    size = batch_size or settings.PULSE_DELIVERY_BATCH_SIZE
    after = None
    while max_batches is None or total.batches < max_batches:
        part, last = _deliver_due(now or timezone.now(), size, after)
        if not part.claimed:
            if after is None:
                break
            after = None
            continue
        after = last if part.claimed == size else None  # a short pick reached the tail
        total.add(part)
    return total


def deliver_due(now: datetime, size: int) -> DeliveryResult:
    """One batch of up to `size` due messages: the in-app ones delivered under their row
    locks, the external ones leased and then sent (`deliver_batch`)."""
    return _deliver_due(now, size, None)[0]


def _deliver_due(now: datetime, size: int, after) -> tuple[DeliveryResult, tuple | None]:
    """One batch, picked after the claim key `after` ((next_attempt_at, id), or None for the
    head); the result and the claim key of the last message picked."""
    result = DeliveryResult(batches=1)
    token = uuid.uuid4().hex
    with transaction.atomic():
        _limit_idle_transaction()
        picked, prefs, last = pick(now, size, after=after)
        result.claimed = len(picked)
        stores_only = {name: get_channel(name).stores_only for name in {m.channel for m in picked}}
        stored = sorted((m for m in picked if stores_only[m.channel]), key=lambda m: m.pk)
        external = [m.pk for m in picked if not stores_only[m.channel]]
        if external:
            external = _lease(token, external, now)
        if stored:
            _deliver_locked(stored, prefs, now, result)
    if external:
        sent = deliver_batch(token, external, now=now)
        sent.batches = sent.claimed = 0
        result.add(sent)
    return result, last


def _limit_idle_transaction() -> None:
    """A worker that hangs inside a batch's transaction loses its row locks after the lease."""
    if connection.vendor == "postgresql":
        ms = int(settings.PULSE_MESSAGE_LEASE.total_seconds() * 1000)
        with connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL idle_in_transaction_session_timeout = {max(ms, 0)}")


def _pick(now: datetime, size: int):
    """(messages, preferences) of up to `size` due messages from the head, locked until the
    transaction ends (campaigns/claimed.py `pick`)."""
    picked, prefs, _last = pick(now, size)
    return picked, prefs


def _lease(token: str, ids: list[int], now: datetime) -> list[int]:
    """Move picked (locked) messages to `sending` under `token`; their ids, sorted."""
    lease_end = connection.ops.adapt_datetimefield_value(now + settings.PULSE_MESSAGE_LEASE)
    table = connection.ops.quote_name(Message._meta.db_table)
    where, params = ids_match("id", ids)
    sql = (f"UPDATE {table} SET status = %s, lease_token = %s, lease_expires_at = %s, next_attempt_at = %s,"
           f" attempts = attempts + 1 WHERE {where} RETURNING id")
    with connection.cursor() as cursor:
        cursor.execute(sql, [Status.SENDING, token, lease_end, lease_end, *params])
        return sorted(pk for (pk,) in cursor.fetchall())


def _deliver_locked(messages: list, prefs: dict, now: datetime, result: DeliveryResult) -> None:
    """Gate, render and record in-app messages this transaction holds locked: one write each.
    Inside the caller's transaction, so the cap's locks are held until the sends are recorded.
    A message whose cap lock another worker holds is left as it was (still due, no attempt
    recorded) for a later batch instead of waiting for that worker to commit."""
    attach_versions(messages)
    outcomes = Outcomes(None, now)
    reasons = gate.early_reasons(messages, prefs)
    stored = []
    for message in messages:
        message.attempts += 1  # this delivery attempt; recorded with its outcome
        if reason := reasons[message.pk]:
            outcomes.skip(message, reason)
        elif (rendered := _render(message, outcomes)) is not None:
            stored.append((message, rendered))
    passing = [m for m, _ in stored]
    over, held = gate.frequency_cap(passing, now=now, wait=False)
    caps = gate.caps_of(passing)
    channels = {name: get_channel(name) for name in {m.channel for m in passing}}
    for message, rendered in stored:
        if message.pk in held:  # another worker holds its cap lock: left due, unwritten
            result.deferred += 1
        elif message.pk in over:
            outcomes.skip(message, gate.Reason.FREQUENCY_CAP)
        else:
            _send(message, rendered, outcomes, now, counted=caps[message.pk] is not None,
                  channel=channels[message.channel])
    outcomes.flush(result)


def deliver_batch(token: str, ids: list[int], *, now: datetime) -> DeliveryResult:
    """Gate, render, send and record one claimed batch with a bounded number of queries.

    Stored-only (in-app) messages are rendered first, outside any lock; then one
    short transaction takes the cap's locks, counts, and records every skip and
    every in-app delivery (their `sent` write is what makes them count against
    the cap), and marks the external messages that pass as counted. External
    sends follow; their outcomes are written together at the end, or one by one
    once half the lease has gone by, so a slow receiver cannot make a whole
    batch's sends lapse unrecorded (and be sent again)."""
    result = DeliveryResult(batches=1, claimed=len(ids))
    messages = load(token, ids)
    outcomes = Outcomes(token, now)
    reasons = gate.early_reasons(messages)
    stored, external = [], []
    for message in messages:
        if reasons[message.pk]:
            outcomes.skip(message, reasons[message.pk])
        elif not get_channel(message.channel).stores_only:
            external.append(message)
        elif (rendered := _render(message, outcomes)) is not None:
            stored.append((message, rendered))
    with transaction.atomic():  # the cap's locks are held until what passes is recorded
        over = gate.over_frequency_cap([m for m, _ in stored] + external, now=now)
        for message, rendered in stored:
            if message.pk in over:
                outcomes.skip(message, gate.Reason.FREQUENCY_CAP)
            else:
                _send(message, rendered, outcomes, now)
        for message in external:
            if message.pk in over:
                outcomes.skip(message, gate.Reason.FREQUENCY_CAP)
        external = [m for m in external if m.pk not in over]
        gate.mark_counted([m for m in external if gate.cap_of(m)], token, now=now)
        outcomes.flush(result)
    half_lease = time.monotonic() + settings.PULSE_MESSAGE_LEASE.total_seconds() / 2
    for message in external:
        if (rendered := _render(message, outcomes)) is not None:
            _send(message, rendered, outcomes, now)
        if time.monotonic() >= half_lease:
            outcomes.flush(result)
    outcomes.flush(result)
    return result


def _render(message, outcomes: Outcomes):
    """What `message` looks like for its user, or None when rendering failed (recorded)."""
    try:
        return rendering.render(message.template_version, message.user, message.context)
    except Exception as exc:  # noqa: BLE001 - a broken template fails its message, not the batch
        log.warning("event=message_render_failed message_id=%s error_type=%s", message.pk,
                    type(exc).__name__)
        outcomes.fail(message, f"rendering failed: {type(exc).__name__}")
        return None


def _send(message, rendered, outcomes: Outcomes, now: datetime, *, counted: bool | None = None,
          channel=None) -> None:
    """Send one message; its outcome joins the batch's (no query here). `counted` (whether it
    passed a frequency cap, `gate.cap_of`) and `channel`: when the caller knows them already."""
    try:
        outcome = (channel or get_channel(message.channel)).send(message, rendered)
    except Exception as exc:  # noqa: BLE001 - an unexpected channel error is retried
        log.warning("event=message_send_error message_id=%s error_type=%s", message.pk, type(exc).__name__)
        outcome = Outcome(ok=False, error=f"channel error: {type(exc).__name__}", retryable=True)
    if outcome.ok:
        if counted is None:
            counted = gate.cap_of(message) is not None
        outcomes.send(message, rendered, outcome.provider_id, counted=counted)
    elif outcome.retryable and message.attempts < settings.PULSE_MESSAGE_MAX_ATTEMPTS:
        delay = settings.PULSE_MESSAGE_RETRY_BASE * 2 ** (message.attempts - 1)
        outcomes.retry(message, outcome.error, at=now + delay)
    else:
        outcomes.fail(message, outcome.error, rendered)
