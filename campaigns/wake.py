"""Waking `deliver_messages` after a commit, coalesced like the drain (engagement/wake.py):
a set-if-absent Redis flag means a burst of queued messages enqueues one job, and the job
clears the flag when it starts so nothing queued meanwhile waits for the tick."""

import django_rq
import redis
from django.db import transaction

from engagement.redis_client import get_redis, warn_unavailable

WAKE_FLAG = "pulse:messages:wake"
WAKE_TTL_SECONDS = 60
DELIVERY_JOB_TIMEOUT = 900


def wake_delivery_on_commit() -> None:
    transaction.on_commit(wake_delivery)


def wake_delivery() -> bool:
    """Enqueue one delivery job on the `messages` queue unless one is pending."""
    try:
        if not get_redis().set(WAKE_FLAG, "1", nx=True, ex=WAKE_TTL_SECONDS):
            return False
        django_rq.get_queue("messages").enqueue(
            "campaigns.jobs.deliver", job_timeout=DELIVERY_JOB_TIMEOUT, result_ttl=60
        )
        return True
    except redis.RedisError as exc:
        warn_unavailable("delivery_wake", exc)
        return False


def clear_wake_flag() -> None:
    try:
        get_redis().delete(WAKE_FLAG)
    except redis.RedisError as exc:
        warn_unavailable("delivery_wake", exc)
