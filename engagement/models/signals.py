"""The signal log: the source of truth every derived state is computed from."""

from django.db import models
from django.db.models import Q


class Signal(models.Model):
    class Source(models.TextChoices):
        API = "api"
        SEGMENT = "segment"
        SYSTEM = "system"
        IMPORT = "import"

    class State(models.TextChoices):
        PENDING = "pending"
        PROCESSING = "processing"
        PROCESSED = "processed"
        FAILED = "failed"

    # No single-column indexes on the foreign keys: the composite indexes below
    # lead with them, and every index on the log costs each insert and drain.
    user = models.ForeignKey(
        "engagement.EndUser", on_delete=models.CASCADE, related_name="signals", db_index=False
    )
    tenant = models.ForeignKey(
        "engagement.Tenant", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        db_index=False,
    )
    name = models.CharField(max_length=200)
    feature = models.CharField(max_length=200, null=True, blank=True)
    item = models.CharField(max_length=255, null=True, blank=True)
    interaction = models.CharField(max_length=100, null=True, blank=True)
    properties = models.JSONField(default=dict, blank=True)
    context = models.JSONField(default=dict, blank=True)
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField()
    # Unique through Meta.constraints: `unique=True` would add a second (LIKE) index on PostgreSQL.
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.API)
    # False for imports and anything older than PULSE_REALTIME_HORIZON at ingest:
    # such history updates derived state but never fires reactions or messages.
    realtime = models.BooleanField(default=True)
    state = models.CharField(max_length=12, choices=State.choices, default=State.PENDING)
    processed_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["idempotency_key"], name="signal_idempotency_key_uniq"),
        ]
        indexes = [
            models.Index(fields=["user", "name", "occurred_at"], name="signal_user_name_time_idx"),
            models.Index(fields=["tenant", "name", "occurred_at"], name="signal_tenant_name_time_idx"),
            models.Index(
                fields=["id"], condition=Q(state="pending"), name="signal_pending_idx"
            ),
            models.Index(
                fields=["id"], condition=Q(state="failed"), name="signal_failed_idx"
            ),
            models.Index(fields=["occurred_at"], name="signal_occurred_idx"),
        ]

    def __str__(self):
        return f"{self.name} #{self.pk}"
