"""A circuit breaker in front of Redis, so an outage costs one socket timeout, not one per request.

Redis is optional on the request path (rate limits fail open, the drain wake-up
is caught up later), but a stalled Redis still makes every call wait for its
socket timeout. After a Redis error the breaker opens: for
PULSE_REDIS_BREAKER_SECONDS every call skips Redis and gets its fallback. Then
one call, the probe, tries Redis while the others keep skipping; success closes
the breaker, failure opens it for another cool-down (0 turns the breaker off:
every call tries Redis and waits for its timeout). The state is per process
(each gunicorn worker finds out on its own), shared by its threads.

Failures are logged at most once a minute per caller (`event=redis_unavailable`),
the recovery once a minute too (`event=redis_available`, with the calls skipped).
"""

import logging
import threading
import time
from collections.abc import Callable

import redis
from django.conf import settings

from . import redis_client

log = logging.getLogger("pulse.redis")


class Breaker:
    def __init__(self, cooldown: Callable[[], float], clock: Callable[[], float] = time.monotonic):
        self._cooldown = cooldown
        self._clock = clock
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.open_until: float | None = None
        self.opened_at: float | None = None
        self.probing = False
        self.skipped = 0
        self._last_recovery_log = -1e9

    @property
    def is_open(self) -> bool:
        return self.open_until is not None

    def allow(self) -> bool:
        """Whether this call may use Redis; when the cool-down is over, only the first caller may (probe)."""
        with self._lock:
            if self.open_until is None:
                return True
            if self._cooldown() <= 0:  # turned off: every call tries Redis
                return True
            if self.probing or self._clock() < self.open_until:
                self.skipped += 1
                return False
            self.probing = True
            return True

    def succeeded(self) -> None:
        with self._lock:
            if self.open_until is None:
                return
            now, opened_at, skipped = self._clock(), self.opened_at or 0.0, self.skipped
            self.open_until, self.opened_at, self.probing, self.skipped = None, None, False, 0
            log_it = now - self._last_recovery_log >= 60
            if log_it:
                self._last_recovery_log = now
        if log_it:
            log.info("event=redis_available outage_ms=%d skipped=%d", (now - opened_at) * 1000, skipped)

    def failed(self, what: str, exc: Exception) -> None:
        with self._lock:
            now = self._clock()
            self.opened_at = self.opened_at if self.opened_at is not None else now
            self.open_until = now + self._cooldown()
            self.probing = False
        redis_client.warn_unavailable(what, exc)

    def release(self) -> None:
        """A probe ended without telling success or failure (a bug, not Redis): let the next one try."""
        with self._lock:
            self.probing = False


def _cooldown() -> float:
    return settings.PULSE_REDIS_BREAKER_SECONDS


breaker = Breaker(_cooldown)


def call[T](what: str, fn: Callable[[redis.Redis], T], fallback: T) -> T:
    """`fn(client)` through the breaker; `fallback` when Redis is skipped or fails (fail open)."""
    if not breaker.allow():
        return fallback
    try:
        result = fn(redis_client.get_redis())
    except redis.RedisError as exc:
        breaker.failed(what, exc)
        return fallback
    except BaseException:
        breaker.release()
        raise
    breaker.succeeded()
    return result
