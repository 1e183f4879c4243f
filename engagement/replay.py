"""Replay: run signal handlers again over stored signals.

Handlers are idempotent (docs/ARCHITECTURE.md §1), so replaying rebuilds derived state
after a handler was fixed or added. Signals are read in keyset-paginated
batches by id, up to the highest id that existed when the replay started
(signals arriving meanwhile are the drain's). Each batch runs in its own
transaction through `pipeline.run_isolated`, with `HandlerContext(replay=True)`,
so one poison signal is isolated and marked failed while its neighbours
replay; a transient database error (deadlock, timeout, lost connection)
marks nothing failed but retries the batch with the drain's backoff, and
stops the replay with a `ReplayError` if it persists (committed batches stay
replayed; handlers are idempotent, so running it again is safe). By default
processed signals are replayed (one that fails now is marked failed, as the
drain would); `failed_only` selects failed signals instead, runs every
handler over them (a failed signal had none applied) and marks those that now
succeed as processed.
"""

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import Max, QuerySet
from django.utils.module_loading import import_string

from .db_errors import is_transient
from .identity import Identifiers, find_user
from .models import Signal
from .pipeline import HandlerContext, mark_processed, run_isolated
from .refs import parse_user_ref
from .registry import entries
from .retry import Backoff, retry_transient

log = logging.getLogger("pulse.replay")
DEFAULT_BATCH = 500


class ReplayError(ValueError):
    """The replay cannot start: an unknown handler or user, a bad range."""


@dataclass
class ReplayResult:
    replayed: int = 0
    failed: int = 0
    batches: int = 0
    errors: list[str] = field(default_factory=list)

    def line(self) -> str:
        return f"replayed={self.replayed} failed={self.failed} batches={self.batches}"


def resolve_handlers(dotted: str | None = None) -> tuple[Callable, ...]:
    """Every handler of PULSE_SIGNAL_HANDLERS, or the one named (registered or importable)."""
    if not dotted:
        return entries("PULSE_SIGNAL_HANDLERS")
    registered = list(settings.PULSE_SIGNAL_HANDLERS)
    matches = [p for p in registered if p == dotted or p.rsplit(".", 1)[-1] == dotted]
    if len(matches) == 1:
        dotted = matches[0]
    try:
        handler = import_string(dotted)
    except ImportError:
        known = ", ".join(registered) or "(none)"
        raise ReplayError(
            f"unknown handler {dotted!r}: give a dotted path that can be imported; "
            f"registered handlers: {known}"
        ) from None
    if not callable(handler):
        raise ReplayError(f"{dotted!r} is not callable")
    return (handler,)


def resolve_user(ref: str) -> int:
    try:
        ids: Identifiers = parse_user_ref(ref)
    except ValueError as exc:
        raise ReplayError(str(exc)) from None
    user = find_user(ids)
    if user is None:
        raise ReplayError(f"no user matches {ref!r}")
    return user.pk


def selection(
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    user_id: int | None = None,
    failed_only: bool = False,
) -> QuerySet:
    """The signals a replay covers: occurred in [since, until), of the user, in the state."""
    if since and until and since >= until:
        raise ReplayError("--since must be before --until")
    signals = Signal.objects.failed() if failed_only else Signal.objects.processed()
    if since:
        signals = signals.filter(occurred_at__gte=since)
    if until:
        signals = signals.filter(occurred_at__lt=until)
    if user_id is not None:
        signals = signals.filter(user_id=user_id)
    return signals


def replay_signals(
    *,
    now: datetime,
    since: datetime | None = None,
    until: datetime | None = None,
    user_id: int | None = None,
    failed_only: bool = False,
    handlers: Sequence[Callable] | None = None,
    batch_size: int = DEFAULT_BATCH,
    progress: Callable[[int, int], None] | None = None,
) -> ReplayResult:
    """Run `handlers` (default: all registered) again over the selected signals."""
    registered = resolve_handlers()
    handlers = tuple(handlers) if handlers is not None else registered
    if failed_only and handlers != registered:
        raise ReplayError(
            "failed signals had none of their handlers applied: replay them with every handler "
            "(drop --handler)"
        )
    signals = selection(since=since, until=until, user_id=user_id, failed_only=failed_only)
    ceiling = signals.aggregate(top=Max("pk"))["top"]
    result = ReplayResult()
    if ceiling is None:
        return result
    total = signals.count() if progress else 0
    context = HandlerContext(now=now, replay=True)
    backoff = Backoff.from_settings()
    after = 0

    def replay_batch():
        with transaction.atomic():
            batch = list(signals.filter(pk__gt=after, pk__lte=ceiling).order_by("pk")[:batch_size])
            failed = run_isolated(batch, handlers, context) if batch else {}
            if failed_only:
                mark_processed([s.pk for s in batch if s.pk not in failed], now)
            return batch, failed

    while True:
        started = time.monotonic()
        try:
            batch, failed = retry_transient(replay_batch, backoff=backoff, log=log, event="replay_retry")
        except Exception as exc:
            if not is_transient(exc):
                raise
            raise ReplayError(
                f"stopped after {result.batches} batches: the database kept failing "
                f"({type(exc).__name__}); the batches done are committed, run the replay again"
            ) from exc
        if not batch:
            break
        after = batch[-1].pk
        result.batches += 1
        result.replayed += len(batch) - len(failed)
        result.failed += len(failed)
        result.errors.extend(failed.values())
        if progress:
            progress(result.replayed + result.failed, total)
        log.info(
            "event=replay_batch size=%d replayed=%d failed=%d last_id=%d duration_ms=%d",
            len(batch), len(batch) - len(failed), len(failed), after,
            (time.monotonic() - started) * 1000,
        )
        if len(batch) < batch_size:
            break
    return result
