"""Waking the drain after an ingest commit, coalesced through a Redis flag (docs/ARCHITECTURE.md §3).

The flag is set-if-absent with a short TTL: a burst of requests enqueues one
drain job. The drain clears the flag when it starts, so signals written while
it runs enqueue the next one and no wake-up is lost. Redis being down never
fails ingestion: the wake goes through the breaker (redis_breaker.py), so it is
skipped at once while Redis is unreachable.

A wake-up that was skipped or failed is owed: this process's next wake, once
Redis answers again, sets the flag without NX and enqueues, because the flag may
be stale (set by a command that timed out, with no job behind it). Without such
a wake, the scheduler tick catches up: every 60 s it wakes the drain when
signals are pending, at the latest once a stale flag's TTL has run out.
"""

import logging

import django_rq
import redis
from django.db import transaction

from . import redis_breaker
from .redis_client import get_redis, warn_unavailable

log = logging.getLogger("pulse.drain")
WAKE_FLAG = "pulse:drain:wake"
WAKE_TTL_SECONDS = 60
DRAIN_JOB_TIMEOUT = 900
_owed = {"wake": False}  # per process; a lost race only costs one more drain job or a tick's wait


def wake_drain_on_commit() -> None:
    transaction.on_commit(wake_drain)


def wake_drain() -> bool:
    """Enqueue one drain job unless one is already pending; True when enqueued."""
    force = _owed["wake"]
    enqueued = redis_breaker.call("drain_wake", lambda client: _enqueue_drain(client, force=force), None)
    _owed["wake"] = enqueued is None
    return bool(enqueued)


def wake_is_owed() -> bool:
    return _owed["wake"]


def _enqueue_drain(client, *, force: bool) -> bool:
    if not client.set(WAKE_FLAG, "1", nx=not force, ex=WAKE_TTL_SECONDS):
        return False
    django_rq.get_queue("signals", connection=client).enqueue(
        "engagement.jobs.drain", job_timeout=DRAIN_JOB_TIMEOUT, result_ttl=60
    )
    return True


def clear_wake_flag() -> None:
    try:
        get_redis().delete(WAKE_FLAG)
    except redis.RedisError as exc:
        warn_unavailable("drain_wake", exc)
