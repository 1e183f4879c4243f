"""The signal tally: per (user, event name), when it first and last happened and how often.

A summary of the log, one row per pair that has signals, kept exact by database
triggers on `engagement_signal` (migration 0014_signal_tally) in the same
transaction as every write to the log: ingest, system signals, set-based
`INSERT … SELECT` writers, imports, ORM creates, merges that move signals,
deletes and cascades. No Python caller maintains it, so none can forget to.

It answers "did N ever happen / happen since T / how many times" without
reading the log: see `buckets.criteria.leaves` for how the criteria compiler
uses it, and for the rare case (`now` before a user's last signal) where it
falls back to the log.
"""

from django.db import models


class SignalTally(models.Model):
    pk = models.CompositePrimaryKey("user_id", "name")
    user = models.ForeignKey("engagement.EndUser", on_delete=models.CASCADE, related_name="+",
                             db_index=False)  # the primary key leads with user_id
    name = models.CharField(max_length=200)
    first_at = models.DateTimeField()
    last_at = models.DateTimeField()
    total = models.BigIntegerField()

    class Meta:
        verbose_name = "signal tally"
        indexes = [
            # "users with name N and last_at >= T", answered from the index alone (PostgreSQL;
            # SQLite has no INCLUDE and keeps (name, last_at)). The primary key (user_id, name)
            # serves the per-user reads.
            models.Index(fields=["name", "last_at"], include=["user", "first_at", "total"],
                         name="signal_tally_name_last_idx"),
        ]

    def __str__(self):
        return f"{self.name} ×{self.total}"
