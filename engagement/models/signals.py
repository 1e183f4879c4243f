"""The signal log: the source of truth every derived state is computed from.

The log is append-only on the happy path. A signal waiting for the drain has
a row in `SignalQueue`; the drain deletes those rows as it claims a batch, and
writes to a signal row only when a handler fails on it (`failed_at`, `error`).
So a signal's processing state is derived: failed when `failed_at` is set,
pending while it is queued, processed otherwise. Rewriting every wide log row
(and each of its index entries) to mark it processed cost the drain more than
all the handlers together.
"""

from django.db import models
from django.db.models import Case, Exists, OuterRef, Q, Value, When


class SignalQuerySet(models.QuerySet):
    def _queued(self):
        return Exists(SignalQueue.objects.filter(signal=OuterRef("pk")))

    def pending(self):
        return self.filter(self._queued(), failed_at__isnull=True)

    def failed(self):
        return self.filter(failed_at__isnull=False)

    def processed(self):
        return self.filter(failed_at__isnull=True).exclude(self._queued())

    def in_state(self, state: str):
        return {"pending": self.pending, "failed": self.failed, "processed": self.processed}[state]()

    def with_state(self):
        """Annotate `state` on each row: one query for a page of signals, not one per row."""
        return self.annotate(
            state=Case(
                When(failed_at__isnull=False, then=Value("failed")),
                When(self._queued(), then=Value("pending")),
                default=Value("processed"),
            )
        )


class Signal(models.Model):
    class Source(models.TextChoices):
        API = "api"
        SEGMENT = "segment"
        SYSTEM = "system"
        IMPORT = "import"

    class State(models.TextChoices):
        PENDING = "pending"
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
    # Namespaced by origin (`api:`, `seg:`; anything else is Pulse's own): see idempotency.py.
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)
    # A digest of what the client sent under that key, so a reused key for another item is
    # told from a retry; null when the signal has no client key.
    request_hash = models.CharField(max_length=32, null=True, blank=True)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.API)
    # Who caused a system signal (`staff:<username>`, `api_key:<name>`, `job:<kind>`,
    # `user_token`); null on client signals, whose sender is the user. A column, not a
    # properties key: properties hold what changed, and a null costs a client row nothing.
    actor = models.CharField(max_length=220, null=True, blank=True)
    # False for imports and anything older than PULSE_REALTIME_HORIZON at ingest:
    # such history updates derived state but never fires reactions or messages.
    realtime = models.BooleanField(default=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True, default="")

    objects = SignalQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["idempotency_key"], name="signal_idempotency_key_uniq"),
        ]
        indexes = [
            models.Index(fields=["user", "name", "occurred_at"], name="signal_user_name_time_idx"),
            models.Index(fields=["tenant", "name", "occurred_at"], name="signal_tenant_name_time_idx"),
            models.Index(
                fields=["failed_at"], condition=Q(failed_at__isnull=False), name="signal_failed_idx"
            ),
            models.Index(fields=["occurred_at"], name="signal_occurred_idx"),
        ]

    def __str__(self):
        return f"{self.name} #{self.pk}"

    @property
    def state(self) -> str:
        """pending, processed or failed; annotated by `with_state()`, else one query."""
        if "_annotated_state" in self.__dict__:
            return self.__dict__["_annotated_state"]
        if self.failed_at is not None:
            return self.State.FAILED
        queued = SignalQueue.objects.filter(signal_id=self.pk).exists()
        return self.State.PENDING if queued else self.State.PROCESSED

    @state.setter
    def state(self, value: str) -> None:
        self.__dict__["_annotated_state"] = value

    def refresh_from_db(self, *args, **kwargs):
        self.__dict__.pop("_annotated_state", None)
        super().refresh_from_db(*args, **kwargs)


class SignalQueue(models.Model):
    """Signals waiting for the drain: a narrow table the drain empties as it claims."""

    signal = models.OneToOneField(Signal, primary_key=True, on_delete=models.CASCADE, related_name="+")

    class Meta:
        verbose_name = "queued signal"

    def __str__(self):
        return f"signal #{self.signal_id}"
