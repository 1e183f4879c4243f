"""Stored profile-feature values: one row per (user, feature name), whatever the feature.

A key-value table, so adding a feature needs no migration. A row is in one of
three states:

- computed: `computed_at` set; `value` (numeric) or `value_text` (categorical)
  holds the answer, or neither when the honest answer was null (no data);
- invalidated: `computed_at` null; an invalidating signal dropped the value
  (`invalidated_at` says when). Readers treat it like a missing row;
- absent: never computed.

`generation` counts the invalidations of the pair. A computation remembers the
generation it saw before reading the data and writes only while it is
unchanged, so a value computed from data older than an invalidation can never
land after it (profiles/store.py explains why a counter, not a clock).
"""

from django.db import models


class ProfileFeatureValue(models.Model):
    # No database-level constraint (migration 0003): the deferred foreign-key check cost one
    # lookup and row lock on the user per value written — about 10 s of a full rebuild's 1.1
    # million rows. Deleting a user through the ORM still deletes its values (on_delete runs in
    # Django), users are soft-deleted on erasure, and the erase and merge handlers drop the rows.
    user = models.ForeignKey(
        "engagement.EndUser", on_delete=models.CASCADE, related_name="+", db_index=False,
        db_constraint=False,
    )
    name = models.CharField(max_length=200)
    value = models.FloatField(null=True, blank=True)
    value_text = models.CharField(max_length=500, null=True, blank=True)
    computed_at = models.DateTimeField(null=True, blank=True)
    invalidated_at = models.DateTimeField(null=True, blank=True)
    generation = models.PositiveBigIntegerField(default=0)

    class Meta:
        verbose_name = "profile feature value"
        constraints = [
            models.UniqueConstraint(fields=["user", "name"], name="profilefeaturevalue_user_name_uniq"),
        ]
        # The staleness panel counts per feature and computed_at cutoff (profiles/staleness.py).
        # On PostgreSQL migration 0002 adds user_id as an INCLUDE column (index-only joins).
        indexes = [models.Index(fields=["name", "computed_at"], name="profilevalue_name_computed_idx")]

    def __str__(self):
        return f"{self.name} (user #{self.user_id})"
