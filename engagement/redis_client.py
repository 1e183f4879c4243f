"""One Redis connection pool per process, with short timeouts: Redis is never waited on for long.

The request path goes through engagement/redis_breaker.py, which skips Redis for a
moment after an error instead of waiting for a timeout on every request."""

import logging
import time
from functools import cache

import redis
from django.conf import settings

from config.redis_connection import client_options

log = logging.getLogger("pulse.redis")
_last_warned: dict[str, float] = {}


@cache
def get_redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, **client_options(settings.REDIS_SOCKET_TIMEOUT))


def warn_unavailable(what: str, exc: Exception) -> None:
    """Log that Redis is unreachable at most once a minute per `what`."""
    now = time.monotonic()
    if now - _last_warned.get(what, -1e9) >= 60:
        _last_warned[what] = now
        log.warning("event=redis_unavailable what=%s error=%s", what, type(exc).__name__)

