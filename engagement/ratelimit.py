"""Per-key sliding-window rate limits in Redis; fails open when Redis is unreachable.

Redis is reached through the breaker (redis_breaker.py): while Redis is down,
requests skip the limiter instead of each waiting for a socket timeout.

The window is the classic two-bucket approximation: this minute's count plus
the previous minute's, weighted by how much of it still overlaps the window.
"""

import math
import time
from dataclasses import dataclass

from django.conf import settings

from . import redis_breaker

WINDOW_SECONDS = 60


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    limit: int
    retry_after: int = 0


def check(key_id: int, scope: str) -> Verdict:
    limit = settings.PULSE_RATE_LIMITS.get(scope, settings.PULSE_RATE_LIMITS["read"])
    now = time.time()
    bucket = int(now // WINDOW_SECONDS)
    elapsed = now - bucket * WINDOW_SECONDS
    current_key = f"pulse:rl:{scope}:{key_id}:{bucket}"
    previous_key = f"pulse:rl:{scope}:{key_id}:{bucket - 1}"
    counts = redis_breaker.call("ratelimit", lambda client: _count(client, current_key, previous_key), None)
    if counts is None:
        return Verdict(True, limit)
    current, previous = counts
    weighted = previous * (WINDOW_SECONDS - elapsed) / WINDOW_SECONDS + current
    if weighted <= limit:
        return Verdict(True, limit)
    return Verdict(False, limit, retry_after=max(1, math.ceil(WINDOW_SECONDS - elapsed)))


def _count(client, current_key: str, previous_key: str) -> tuple[int, int]:
    """Count this request in the current bucket; return (current, previous) counts."""
    pipe = client.pipeline(transaction=False)
    pipe.incr(current_key)
    pipe.expire(current_key, WINDOW_SECONDS * 2)
    pipe.get(previous_key)
    current, _, previous = pipe.execute()
    return current, int(previous or 0)
