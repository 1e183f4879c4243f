"""Retrying a unit of database work that failed for a transient reason.

`retry_transient(work)` runs `work()` (one whole transaction) and, when it
raises an error `db_errors.is_transient` accepts, waits and runs it again:
exponential backoff with jitter, bounded in delay and in number of retries.
A data error, or a transient one that outlasts the retries, propagates.
Before a retry the connection is closed when no outer transaction holds it,
so one lost mid-transaction is reopened rather than reused.
"""

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import connection

from .db_errors import is_transient

sleep = time.sleep  # looked up at each call, so tests count the waits instead of waiting


@dataclass(frozen=True)
class Backoff:
    retries: int = 5
    base_seconds: float = 0.5
    max_seconds: float = 30.0

    @classmethod
    def from_settings(cls) -> "Backoff":
        return cls(
            retries=settings.PULSE_DRAIN_RETRIES,
            base_seconds=settings.PULSE_DRAIN_BACKOFF_SECONDS,
            max_seconds=settings.PULSE_DRAIN_BACKOFF_MAX_SECONDS,
        )

    def delay(self, retry: int, rng: random.Random | None = None) -> float:
        """Seconds before retry number `retry` (0 first): between half and all of
        min(max, base·2^retry), so workers that failed together do not retry in step."""
        ceiling = min(self.max_seconds, self.base_seconds * 2 ** min(retry, 32))
        return ceiling * (rng or random).uniform(0.5, 1.0)


def retry_transient[T](
    work: Callable[[], T],
    *,
    backoff: Backoff,
    log: logging.Logger,
    event: str,
    on_retry: Callable[[BaseException], None] | None = None,
) -> T:
    """`work()`'s result; transient errors retried up to `backoff.retries` times."""
    retry = 0
    while True:
        try:
            return work()
        except Exception as exc:
            if retry >= backoff.retries or not is_transient(exc):
                raise
            delay = backoff.delay(retry)
            retry += 1
            log.warning(
                "event=%s retry=%d of=%d error_type=%s delay_ms=%d",
                event, retry, backoff.retries, type(exc).__name__, delay * 1000,
            )
            if on_retry:
                on_retry(exc)
            reset_connection()
            sleep(delay)


def reset_connection() -> None:
    """Drop the connection unless an outer transaction owns it (then it is the owner's)."""
    if not connection.in_atomic_block:
        connection.close()
