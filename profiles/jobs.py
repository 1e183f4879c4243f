"""Rebuilding many profiles as a job: a JobRun (kind `rebuild_profiles`, trigger manual)
whose `cursor` holds what to rebuild and the progress, executed by an RQ worker.

The cursor: `{"user_ids": [...]}` (an admin selection) or `{"scope": "eligible"}`
(the staleness panel's users), plus `stale_only`, `features`, and the progress
`done` / `total` and `after` (the last user id finished, so a resumed run goes
on where it stopped).
"""

import logging
from datetime import datetime

import django_rq
import redis
from django.utils import timezone

from engagement.job_runs import JobResult, execute_run, extend_lease
from engagement.models import EndUser, JobRun

from .refresh import DEFAULT_BATCH, ChunkResult, refresh_chunk, user_id_chunks
from .registry import select
from .staleness import eligible_users

log = logging.getLogger("pulse.profiles")
KIND = "rebuild_profiles"
QUEUE = "default"
TIMEOUT = 3600


def start_rebuild(*, actor: str, now: datetime, user_ids=None, scope: str | None = None,
                  stale_only: bool = False, features=None) -> JobRun:
    """Record a rebuild run and enqueue it; a run Redis would not take is marked failed."""
    cursor = {"stale_only": stale_only, "features": features, "done": 0, "after": None}
    if user_ids is not None:
        cursor["user_ids"] = sorted(int(pk) for pk in user_ids)
    else:
        cursor["scope"] = scope or "eligible"
    run = JobRun.objects.create(
        kind=KIND, window=now.replace(second=0, microsecond=0), trigger=JobRun.Trigger.MANUAL,
        actor=actor, as_of=now, status=JobRun.Status.QUEUED, queue=QUEUE, cursor=cursor,
    )
    try:
        job = django_rq.get_queue(QUEUE).enqueue(
            "profiles.jobs.rebuild_profiles_job", run.pk, job_timeout=TIMEOUT,
            description=f"{KIND} job run {run.pk}",
        )
    except redis.RedisError as exc:
        JobRun.objects.filter(pk=run.pk).update(
            status=JobRun.Status.FAILED, finished_at=timezone.now(),
            errors=[f"not enqueued: Redis unavailable ({type(exc).__name__})"],
        )
        run.refresh_from_db()
        return run
    JobRun.objects.filter(pk=run.pk).update(job_id=job.id)
    run.job_id = job.id
    log.info("event=profile_rebuild_enqueued job_run=%d queue=%s", run.pk, QUEUE)
    return run


def rebuild_profiles_job(run_pk: int) -> dict:
    """RQ entry point: execute one rebuild run (a duplicate delivery is a no-op)."""
    run = execute_run(run_pk, func=rebuild_run)
    return {"job_run": run_pk, "status": run.status if run else "missing"}


def run_users(cursor: dict, now: datetime):
    if "user_ids" in cursor:
        return EndUser.objects.filter(pk__in=cursor["user_ids"], deleted_at__isnull=True)
    if cursor.get("scope") == "live":
        return EndUser.objects.filter(deleted_at__isnull=True)
    return eligible_users(now)


def rebuild_run(run: JobRun, now: datetime) -> JobResult:
    cursor = dict(run.cursor)
    features = select(cursor.get("features"))
    users = run_users(cursor, now)
    if cursor.get("after") is not None:
        users = users.filter(pk__gt=cursor["after"])
    cursor.setdefault("total", users.count() + cursor.get("done", 0))
    total = ChunkResult()
    for chunk in user_id_chunks(users, DEFAULT_BATCH):
        done = refresh_chunk(chunk, features, now, force=not cursor.get("stale_only"))
        total.add(done)
        cursor.update(done=cursor.get("done", 0) + len(chunk), after=chunk[-1])
        extend_lease(run, cursor=cursor)
    return JobResult(processed=total.users, succeeded=total.written, skipped=total.refused,
                     failed=len(total.failed_groups), errors=list(total.failed_groups), cursor=cursor)
