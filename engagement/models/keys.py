"""API keys: only a SHA-256 of the key is stored; the prefix finds the row."""

from django.db import models

# What each scope grants is in docs/ARCHITECTURE.md ("Scopes"); `admin` implies the others.
SCOPES = ("ingest", "read", "send", "admin")


class ApiKey(models.Model):
    name = models.CharField(max_length=200)
    prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64)
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API key"

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def allows(self, scope: str) -> bool:
        return scope_allows(self.scopes, scope)


def scope_allows(granted, scope: str) -> bool:
    """A key's scopes grant exactly what they name; `admin` grants every scope."""
    return "admin" in granted or scope in granted
