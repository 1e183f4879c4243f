"""One row per (kind, window) of a scheduled job: the unique key that makes reruns no-ops."""

from django.db import models


class JobRun(models.Model):
    class Status(models.TextChoices):
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        SKIPPED = "skipped"

    kind = models.CharField(max_length=100)
    window = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices)
    attempts = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    processed = models.PositiveIntegerField(default=0)
    succeeded = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    cursor = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name = "job run"
        constraints = [
            models.UniqueConstraint(fields=["kind", "window"], name="jobrun_kind_window_uniq")
        ]
        indexes = [models.Index(fields=["window"], name="jobrun_window_idx")]
        ordering = ["-window"]

    def __str__(self):
        return f"{self.kind} @ {self.window:%Y-%m-%d %H:%M} ({self.status})"
