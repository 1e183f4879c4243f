"""Tenants, end users, their memberships and the aliases left behind by merges."""

from django.conf import settings
from django.db import models
from django.db.models import Q


class Tenant(models.Model):
    """A customer account of the client's (B2B) product."""

    key = models.CharField(max_length=200, unique=True)
    name = models.CharField(max_length=300, blank=True, default="")
    traits = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["key"]

    def __str__(self):
        return self.name or self.key


class EndUser(models.Model):
    """A user of the client's product. Identifiers are unique among live users."""

    external_id = models.CharField(max_length=255, null=True, blank=True)
    anonymous_id = models.CharField(max_length=255, null=True, blank=True)
    email = models.CharField(max_length=320, null=True, blank=True)
    properties = models.JSONField(default=dict, blank=True)
    timezone = models.CharField(max_length=64, blank=True, default="")
    locale = models.CharField(max_length=35, blank=True, default="")
    reengagement_opt_out = models.BooleanField(default=False)
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    primary_tenant = models.ForeignKey(
        Tenant, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name = "user"
        constraints = [
            models.UniqueConstraint(
                fields=["external_id"],
                condition=Q(deleted_at__isnull=True, external_id__isnull=False),
                name="enduser_live_external_id_uniq",
            ),
            models.UniqueConstraint(
                fields=["anonymous_id"],
                condition=Q(deleted_at__isnull=True, anonymous_id__isnull=False),
                name="enduser_live_anonymous_id_uniq",
            ),
            models.UniqueConstraint(
                fields=["email"],
                condition=Q(deleted_at__isnull=True, email__isnull=False),
                name="enduser_live_email_uniq",
            ),
        ]
        # No index on last_seen_at / first_seen_at: the drain moves them for every active
        # user, and leaving them unindexed lets PostgreSQL update those rows in place (HOT).

    def __str__(self):
        return self.external_id or self.email or (
            f"anon:{self.anonymous_id}" if self.anonymous_id else f"user #{self.pk}"
        )

    @property
    def is_live(self) -> bool:
        return self.deleted_at is None


class UserAlias(models.Model):
    """An identifier of a merged-away user that keeps resolving to its survivor."""

    KINDS = [("external_id", "external id"), ("anonymous_id", "anonymous id"), ("email", "email")]
    kind = models.CharField(max_length=20, choices=KINDS)
    value = models.CharField(max_length=320)
    user = models.ForeignKey(EndUser, on_delete=models.CASCADE, related_name="aliases")
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "value"], name="useralias_kind_value_uniq")
        ]

    def __str__(self):
        return f"{self.kind}:{self.value}"


class Membership(models.Model):
    user = models.ForeignKey(EndUser, on_delete=models.CASCADE, related_name="memberships")
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=100, blank=True, default="")
    joined_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "tenant"], name="membership_user_tenant_uniq")
        ]
        indexes = [models.Index(fields=["tenant", "joined_at"], name="membership_tenant_joined_idx")]

    def __str__(self):
        return f"membership #{self.pk} (tenant #{self.tenant_id})"


class Erasure(models.Model):
    """Who erased which user and when; the user's personal data is gone."""

    user_id_erased = models.BigIntegerField(db_index=True)
    erased_by = models.CharField(max_length=200)
    erased_at = models.DateTimeField()
    counts = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-erased_at"]

    def __str__(self):
        return f"user #{self.user_id_erased} erased by {self.erased_by}"


def staff_user_model():
    return settings.AUTH_USER_MODEL
