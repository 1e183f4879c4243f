"""Retention: finished messages older than PULSE_MESSAGE_RETENTION_DAYS are pruned daily."""

from datetime import datetime, timedelta

from django.conf import settings

from engagement.scheduler import JobResult

from .models import Message

PRUNE_CHUNK = 5000
FINISHED = [Message.Status.SENT, Message.Status.SKIPPED, Message.Status.FAILED]


def prune_messages(run, now: datetime) -> JobResult:
    """Delete sent, skipped and failed messages created before the cutoff, in chunks."""
    cutoff = now - timedelta(days=settings.PULSE_MESSAGE_RETENTION_DAYS)
    deleted = 0
    while True:
        ids = list(
            Message.objects.filter(created_at__lt=cutoff, status__in=FINISHED)
            .order_by("pk").values_list("pk", flat=True)[:PRUNE_CHUNK]
        )
        if not ids:
            break
        deleted += Message.objects.filter(pk__in=ids).delete()[0]
    return JobResult(processed=deleted, succeeded=deleted)
