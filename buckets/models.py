"""Bucket definitions. Memberships, transitions and reactions come with the next issue."""

from django.db import models


class Bucket(models.Model):
    """A segment of users: `dynamic` from criteria, or `manual`."""

    class Kind(models.TextChoices):
        DYNAMIC = "dynamic"
        MANUAL = "manual"

    slug = models.SlugField(max_length=100, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.DYNAMIC)
    criteria = models.JSONField(null=True, blank=True)
    enabled = models.BooleanField(default=True)
    criteria_fingerprint = models.CharField(max_length=64, blank=True, default="", editable=False)
    created_at = models.DateTimeField(editable=False)
    created_by = models.CharField(max_length=200, editable=False)
    updated_at = models.DateTimeField(editable=False)
    updated_by = models.CharField(max_length=200, editable=False)
    # The last failure evaluating the criteria (set by the paths that evaluate them).
    last_error = models.TextField(blank=True, default="", editable=False)

    class Meta:
        ordering = ["slug"]

    def __str__(self):
        return self.name or self.slug
