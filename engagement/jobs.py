"""Thin RQ entry points. They take primary keys or nothing, never model instances."""

import logging
from datetime import datetime

import redis

from .redis_client import get_redis, warn_unavailable

log = logging.getLogger("pulse.jobs")
TICK_KEY = "pulse:scheduler:last_tick"


def drain() -> dict:
    """Drain every pending signal (woken by ingest, and by the tick).

    A database that keeps failing transiently ends the job normally with the batch
    still pending (`stalled`): the next wake or tick retries, and no signal is
    marked failed for the database's trouble."""
    from rq import get_current_job

    from .pipeline import process_signals
    from .wake import clear_wake_flag

    clear_wake_flag()
    result = process_signals()
    job = get_current_job()
    log.info(
        "event=drain_done job_id=%s batches=%d processed=%d failed=%d retries=%d stalled=%s",
        job.id if job else "-", result.batches, result.processed, result.failed, result.retries,
        str(result.stalled).lower(),
    )
    return {
        "batches": result.batches, "processed": result.processed, "failed": result.failed,
        "retries": result.retries, "stalled": result.stalled,
    }


def run_job_run(run_pk: int) -> dict:
    """Execute one scheduled job run (enqueued by the tick on its schedule's queue)."""
    from .job_runs import execute_run

    run = execute_run(run_pk)
    if run is None:
        log.warning("event=job_run_missing job_run=%d", run_pk)
        return {"job_run": run_pk, "status": "missing"}
    return {"job_run": run_pk, "status": run.status, "attempts": run.attempts}


def note_tick(now: datetime) -> None:
    try:
        get_redis().set(TICK_KEY, now.isoformat(), ex=24 * 3600)
    except redis.RedisError as exc:
        warn_unavailable("scheduler_heartbeat", exc)


def last_tick() -> str | None:
    value = get_redis().get(TICK_KEY)
    return value.decode() if value else None
