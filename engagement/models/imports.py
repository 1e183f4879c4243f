"""One row per import of a file: the checkpoint that lets an interrupted import resume."""

from django.db import models


class ImportRun(models.Model):
    """Progress of `import_signals` / `import_users` over one file.

    The row is updated in the same transaction as each chunk it counts, so
    `lines_done` always names the last input line whose effects are committed.
    A re-run of a file with the same fingerprint resumes an unfinished run.
    started/updated/finished are wall-clock bookkeeping; the rules of an
    import use the `now` it was given.
    """

    class Kind(models.TextChoices):
        SIGNALS = "signals"
        USERS = "users"

    class Status(models.TextChoices):
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        ABANDONED = "abandoned"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    format = models.CharField(max_length=10)
    path = models.TextField()
    # sha256 of the whole file; with its size, what "the same file" means.
    fingerprint = models.CharField(max_length=64)
    size = models.BigIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    # Physical input lines whose effects are committed (the resume point).
    lines_done = models.BigIntegerField(default=0)
    read = models.BigIntegerField(default=0)
    imported = models.BigIntegerField(default=0)
    duplicates = models.BigIntegerField(default=0)
    rejected = models.BigIntegerField(default=0)
    chunks = models.PositiveIntegerField(default=0)
    report_path = models.TextField(blank=True, default="")
    # Size of the rejection report when the last chunk committed: a resumed run
    # truncates the report there, so no rejection is written twice.
    report_bytes = models.BigIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    started_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "import run"
        indexes = [
            models.Index(fields=["kind", "fingerprint", "status"], name="importrun_resume_idx"),
        ]
        ordering = ["-started_at"]

    def __str__(self):
        return f"{self.kind} import of {self.path} ({self.status})"

    @property
    def finished(self) -> bool:
        return self.status in (self.Status.SUCCEEDED, self.Status.ABANDONED)
