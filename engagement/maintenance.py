"""Housekeeping jobs run by the scheduler."""

from datetime import datetime, timedelta

from django.conf import settings

from .job_runs import JobResult, extend_lease
from .models import JobRun

PRUNE_CHUNK = 5000


def prune_job_runs(run: JobRun, now: datetime) -> JobResult:
    """Delete job runs whose window is older than PULSE_JOB_RUN_RETENTION_DAYS, in chunks.

    Deleting is its own cursor (what is gone stays gone), so a resumed run just
    carries on; the lease is extended after every chunk.
    """
    cutoff = now - timedelta(days=settings.PULSE_JOB_RUN_RETENTION_DAYS)
    deleted = 0
    while True:
        ids = list(
            JobRun.objects.filter(window__lt=cutoff)
            .exclude(pk=run.pk)
            .order_by("pk")
            .values_list("pk", flat=True)[:PRUNE_CHUNK]
        )
        if not ids:
            break
        deleted += JobRun.objects.filter(pk__in=ids).delete()[0]
        extend_lease(run)
    return JobResult(processed=deleted, succeeded=deleted)
