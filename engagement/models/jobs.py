"""Job runs. A scheduled window is one row per (kind, window), the unique key that makes a
second scheduler or a rerun a no-op; a manual run (a job's command run by hand) is a row
of its own each time, so that key holds for `trigger=schedule` rows only."""

from django.db import models


class JobRun(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued"  # claimed by the tick, waiting for a worker
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        SKIPPED = "skipped"

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule"
        MANUAL = "manual"

    kind = models.CharField(max_length=100)
    window = models.DateTimeField()
    trigger = models.CharField(max_length=10, choices=Trigger.choices, default=Trigger.SCHEDULE)
    actor = models.CharField(max_length=150, blank=True, default="")
    # The `now` the job evaluates at: the tick's, or a manual run's --now.
    as_of = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices)
    # Where the run was last enqueued ("" when it ran in-process) and that RQ job's id.
    queue = models.CharField(max_length=50, blank=True, default="")
    job_id = models.CharField(max_length=64, blank=True, default="")
    # Also the fencing token: a worker may write to the run only while attempts is unchanged.
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
            models.UniqueConstraint(
                fields=["kind", "window"],
                condition=models.Q(trigger="schedule"),
                name="jobrun_kind_window_sched_uniq",
            )
        ]
        indexes = [models.Index(fields=["window"], name="jobrun_window_idx")]
        ordering = ["-window"]

    def __str__(self):
        manual = " manual" if self.trigger == self.Trigger.MANUAL else ""
        return f"{self.kind} @ {self.window:%Y-%m-%d %H:%M}{manual} ({self.status})"

    @property
    def awaiting_enqueue(self) -> bool:
        """Claimed by a tick that could not reach Redis: due, and the next tick enqueues it."""
        return self.status == self.Status.QUEUED and self.lease_expires_at is None
