"""Housekeeping jobs run by the scheduler."""

from datetime import datetime, timedelta

from django.conf import settings

from .models import JobRun
from .scheduler import JobResult

PRUNE_CHUNK = 5000


def prune_job_runs(run: JobRun, now: datetime) -> JobResult:
    """Delete job runs whose window is older than PULSE_JOB_RUN_RETENTION_DAYS, in chunks."""
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
    return JobResult(processed=deleted, succeeded=deleted)
