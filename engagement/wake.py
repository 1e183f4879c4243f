"""Waking the drain after an ingest commit, coalesced through a Redis flag (DESIGN.md §3).

The flag is set-if-absent with a short TTL: a burst of requests enqueues one
drain job. The drain clears the flag when it starts, so signals written while
it runs enqueue the next one and no wake-up is lost. Redis being down never
fails ingestion: the scheduler tick drains too.
"""

import logging

import django_rq
import redis
from django.db import transaction

from .redis_client import get_redis, warn_unavailable

log = logging.getLogger("pulse.drain")
WAKE_FLAG = "pulse:drain:wake"
WAKE_TTL_SECONDS = 60
DRAIN_JOB_TIMEOUT = 900


def wake_drain_on_commit() -> None:
    transaction.on_commit(wake_drain)


def wake_drain() -> bool:
    """Enqueue one drain job unless one is already pending; True when enqueued."""
    try:
        if not get_redis().set(WAKE_FLAG, "1", nx=True, ex=WAKE_TTL_SECONDS):
            return False
        django_rq.get_queue("signals").enqueue(
            "engagement.jobs.drain", job_timeout=DRAIN_JOB_TIMEOUT, result_ttl=60
        )
        return True
    except redis.RedisError as exc:
        warn_unavailable("drain_wake", exc)
        return False


def clear_wake_flag() -> None:
    try:
        get_redis().delete(WAKE_FLAG)
    except redis.RedisError as exc:
        warn_unavailable("drain_wake", exc)
