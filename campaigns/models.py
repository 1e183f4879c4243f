"""Message templates (versioned), the message outbox, users' preferences, frequency-cap locks."""

from django.db import models
from django.db.models import Q


class Channel(models.TextChoices):
    IN_APP = "in_app"
    WEBHOOK = "webhook"


class Category(models.TextChoices):
    TRANSACTIONAL = "transactional"
    LIFECYCLE = "lifecycle"
    MARKETING = "marketing"
    SYSTEM = "system"


class MessageTemplate(models.Model):
    """A template's identity; its content lives in versions, the newest being `current_version`.

    A webhook template's signing secret is stored encrypted (campaigns/secrets.py)."""

    key = models.CharField(max_length=200, unique=True)
    channel = models.CharField(max_length=20, choices=Channel.choices)
    current_version = models.ForeignKey(
        "TemplateVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    webhook_secret = models.TextField(blank=True, default="", help_text="encrypted; never shown again")
    archived_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        verbose_name = "message template"
        ordering = ["key"]

    def __str__(self):
        return self.key


class TemplateVersion(models.Model):
    """One immutable revision of a template, recorded with who made it."""

    template = models.ForeignKey(MessageTemplate, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    category = models.CharField(max_length=20, choices=Category.choices)
    feature = models.CharField(max_length=200)
    default_locale = models.CharField(max_length=35)
    # {"en": {"subject": …, "text": …, "html": …?}, …}
    variants = models.JSONField(default=dict)
    # [{"id": "busy", "labels": {"en": "…"}}]
    actions = models.JSONField(default=list, blank=True)
    url = models.CharField(max_length=2000, blank=True, default="")
    created_by = models.CharField(max_length=200)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["template", "number"], name="templateversion_number_uniq")
        ]
        ordering = ["template", "-number"]

    def __str__(self):
        return f"{self.template_id} v{self.number}"


class Message(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued"
        SENDING = "sending"
        SENT = "sent"
        FAILED = "failed"
        SKIPPED = "skipped"
        CANCELLED = "cancelled"

    class Source(models.TextChoices):
        API = "api"
        LIFECYCLE = "lifecycle"
        CAMPAIGN = "campaign"
        BUCKET = "bucket"

    class SkipReason(models.TextChoices):
        USER_ERASED = "user_erased"
        UNSUBSCRIBED_ALL = "unsubscribed_all"
        CATEGORY_OPT_OUT = "category_opt_out"
        FREQUENCY_CAP = "frequency_cap"

    user = models.ForeignKey("engagement.EndUser", on_delete=models.CASCADE, related_name="+")
    template = models.ForeignKey(MessageTemplate, on_delete=models.PROTECT, related_name="messages")
    template_version = models.ForeignKey(TemplateVersion, on_delete=models.PROTECT, related_name="+")
    channel = models.CharField(max_length=20, choices=Channel.choices)
    category = models.CharField(max_length=20, choices=Category.choices)
    destination = models.CharField(max_length=2000, blank=True, default="")
    context = models.JSONField(default=dict, blank=True)
    scheduled_for = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    skip_reason = models.CharField(max_length=30, choices=SkipReason.choices, blank=True, default="")
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    # The claim: a random token per claim, so a worker whose lease lapsed cannot record an outcome.
    lease_token = models.CharField(max_length=32, blank=True, default="")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    # Set when the message passed the frequency cap: from then on it counts against it.
    gated_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    # Unique per source; null keys never collide (NULLs are distinct in unique constraints).
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)
    content_hash = models.CharField(max_length=32, blank=True, default="")
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.API)
    sent_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)
    provider_id = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField()
    # What the user saw, frozen at delivery.
    locale = models.CharField(max_length=35, blank=True, default="")
    subject = models.TextField(blank=True, default="")
    text = models.TextField(blank=True, default="")
    html = models.TextField(blank=True, default="")
    rendered_actions = models.JSONField(default=list, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source", "idempotency_key"], name="message_source_key_uniq"),
        ]
        indexes = [
            # the claim: due work only (queued, or sending with a lease that may lapse), in the
            # claim's own order, so `ORDER BY next_attempt_at, id LIMIT n` reads n entries
            # instead of sorting every due message (a batch of the same moment shares one time)
            models.Index(
                fields=["next_attempt_at", "id"], condition=Q(status__in=["queued", "sending"]),
                name="message_due_order_idx",
            ),
            models.Index(fields=["user", "created_at"], name="message_user_created_idx"),
            models.Index(
                fields=["user", "category", "gated_at"], condition=Q(gated_at__isnull=False),
                name="message_cap_idx",
            ),
            models.Index(fields=["created_at"], name="message_created_idx"),
        ]

    def __str__(self):
        return f"message #{self.pk}"


class Preference(models.Model):
    """What a user agreed to receive; absent means everything is allowed."""

    user = models.OneToOneField("engagement.EndUser", on_delete=models.CASCADE, related_name="+")
    unsubscribed_all = models.BooleanField(default=False)
    categories = models.JSONField(default=dict, blank=True)  # {"marketing": false}
    updated_at = models.DateTimeField()
    updated_by = models.CharField(max_length=200, blank=True, default="")

    def __str__(self):
        return f"preferences of user #{self.user_id}"
