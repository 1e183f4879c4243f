"""The drain: claim a batch of pending signals, run every handler, mark them processed.

All three steps happen in ONE transaction, so a batch is either fully applied
or still pending. Handlers come from PULSE_SIGNAL_HANDLERS, in order; each is
called as `handler(signals, context)` with the whole batch and must be
set-based and idempotent (replay runs them again). A handler asks
`context.may_act(signal)` before anything that reacts (a message, a
reaction): history and replays inform derived state, they do not act.

Failures are told apart by `db_errors.is_transient`. A data error (a handler
raising on a bad signal) splits the batch in halves until the failing signal
is isolated; that one is marked failed with its error and the rest proceed.
A transient error (deadlock, serialization failure, statement timeout, lost
connection) says nothing about the signals: it aborts the batch, bisection
included, so its transaction rolls back whole (the queue rows are back,
nothing is marked failed), and the batch is retried with bounded backoff. When
the retries run out the drain stops with the signals still pending
(`DrainResult.stalled`); the next wake or scheduler tick tries again.
"""

import logging
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from .bulk import insert_returning
from .db_errors import is_transient
from .models import Signal, SignalQueue
from .registry import entries
from .retry import Backoff, retry_transient

log = logging.getLogger("pulse.drain")


@dataclass(frozen=True)
class HandlerContext:
    """What a handler is told besides the batch: the evaluation time and why it runs."""

    now: datetime
    replay: bool = False

    def may_act(self, signal: Signal) -> bool:
        """Whether the signal may fire reactions or messages: only live signals on a first
        pass. History (imports, anything older than PULSE_REALTIME_HORIZON at ingest) and
        replays update derived state but never act (docs/ARCHITECTURE.md §1)."""
        return signal.realtime and not self.replay


@dataclass
class DrainResult:
    batches: int = 0
    processed: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    retries: int = 0  # batches run again after a transient database error
    stalled: bool = False  # stopped on a transient error that outlasted the retries


def process_signals(
    *,
    now: datetime | None = None,
    batch_size: int | None = None,
    max_batches: int | None = None,
    on_batch: Callable[[DrainResult], None] | None = None,
    backoff: Backoff | None = None,
) -> DrainResult:
    """Drain pending signals batch by batch until none is left (or `max_batches`).

    `on_batch(result_so_far)` is called after each committed batch (progress display).
    A transient database error retries the batch (`backoff`, default from settings);
    when it persists the drain returns with `stalled` set and the batch still pending."""
    batch_size = batch_size or settings.PULSE_DRAIN_BATCH_SIZE
    handlers = entries("PULSE_SIGNAL_HANDLERS")
    backoff = backoff or Backoff.from_settings()
    result = DrainResult()

    def count_retry(exc: BaseException) -> None:
        result.retries += 1

    while max_batches is None or result.batches < max_batches:
        started = time.monotonic()
        try:
            drained = retry_transient(
                lambda: _drain_one_batch(batch_size, handlers, now),
                backoff=backoff, log=log, event="drain_retry", on_retry=count_retry,
            )
        except Exception as exc:
            if not is_transient(exc):
                raise
            result.stalled = True
            log.error(
                "event=drain_stalled error_type=%s retries=%d batches=%d",
                type(exc).__name__, backoff.retries, result.batches,
            )
            break
        if drained is None:
            break
        batch, failed = drained
        result.batches += 1
        result.processed += len(batch) - len(failed)
        result.failed += len(failed)
        result.errors.extend(failed.values())
        if on_batch:
            on_batch(result)
        log.info(
            "event=drain_batch size=%d processed=%d failed=%d duration_ms=%d",
            len(batch), len(batch) - len(failed), len(failed),
            (time.monotonic() - started) * 1000,
        )
    return result


def _drain_one_batch(
    batch_size: int, handlers: Sequence[Callable], now: datetime | None
) -> tuple[list[Signal], dict[int, str]] | None:
    """Claim and process one batch in one transaction; None when nothing is pending."""
    with transaction.atomic():
        context = HandlerContext(now=now or timezone.now())
        batch = claim_batch(batch_size)
        if not batch:
            return None
        return batch, run_isolated(batch, handlers, context)


def claim_batch(size: int) -> list[Signal]:
    """Take the oldest queued signals off the queue and load them.

    The caller's transaction makes the claim provisional: if the batch fails
    as a whole, the queue rows come back. PostgreSQL skips rows other drains
    hold (`SKIP LOCKED`), so workers drain in parallel; SQLite has one writer
    at a time (IMMEDIATE transactions). The pick is a CTE so it runs once: as
    a plain `IN (subquery)` PostgreSQL may re-run a `LIMIT … SKIP LOCKED`
    subquery per row and claim more than `size`.
    """
    queue = connection.ops.quote_name(SignalQueue._meta.db_table)
    lock = " FOR UPDATE SKIP LOCKED" if connection.vendor == "postgresql" else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH picked AS (SELECT signal_id FROM {queue} ORDER BY signal_id LIMIT %s{lock}) "
            f"DELETE FROM {queue} WHERE signal_id IN (SELECT signal_id FROM picked) RETURNING signal_id",
            [size],
        )
        ids = [row[0] for row in cursor.fetchall()]
    if not ids:
        return []
    return list(Signal.objects.filter(pk__in=ids).order_by("pk"))


def enqueue(signal_ids: Sequence[int]) -> None:
    """Queue signals for the drain (in the caller's transaction); already queued ones stay once."""
    if signal_ids:
        insert_returning(
            SignalQueue, [{"signal_id": pk} for pk in signal_ids], conflict_fields=["signal"],
            returning=("signal",),
        )


def run_isolated(
    batch: Sequence[Signal], handlers: Sequence[Callable], context: HandlerContext
) -> dict[int, str]:
    """Run the handlers over the batch; return {signal id: error} for the ones that failed.

    A data error bisects the batch down to its culprits. A transient error is raised
    as it is, from any depth: the caller's transaction must roll back whole, undoing
    any signal this bisection had already marked failed."""
    try:
        with transaction.atomic():
            for handler in handlers:
                handler(batch, context)
        return {}
    except Exception as exc:  # noqa: BLE001 - any data error isolates the culprit
        if is_transient(exc):
            raise
        if len(batch) == 1:
            return _mark_failed(batch[0], exc, context.now)
    middle = len(batch) // 2
    failed = run_isolated(batch[:middle], handlers, context)
    failed.update(run_isolated(batch[middle:], handlers, context))
    return failed


def _mark_failed(signal: Signal, exc: Exception, now: datetime) -> dict[int, str]:
    error = f"{type(exc).__name__}: {exc}"[:2000]
    detail = "".join(traceback.format_exception_only(type(exc), exc))[:4000]
    Signal.objects.filter(pk=signal.pk).update(failed_at=now, error=detail)
    log.warning("event=signal_failed signal_id=%d error_type=%s", signal.pk, type(exc).__name__)
    return {signal.pk: error}


def mark_processed(ids: Sequence[int], now: datetime) -> None:
    """Replay of failed signals: the ones that now succeed are processed."""
    if ids:
        Signal.objects.filter(pk__in=list(ids)).update(failed_at=None, error="")


def has_pending() -> bool:
    """Whether anything waits to be drained."""
    return SignalQueue.objects.exists()


def requeue_failed(signal_ids=None) -> int:
    """Put failed signals back in the queue (all of them, or the given ids) and wake the drain."""
    from .wake import wake_drain_on_commit

    failed = Signal.objects.failed()
    if signal_ids is not None:
        failed = failed.filter(pk__in=list(signal_ids))
    with transaction.atomic():
        ids = list(failed.select_for_update().values_list("pk", flat=True))
        Signal.objects.filter(pk__in=ids).update(failed_at=None, error="")
        enqueue(ids)
        if ids:
            wake_drain_on_commit()
    return len(ids)
