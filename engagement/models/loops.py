"""State of the engagement loops: item engagement per (user, item), calibrations per tenant."""

from django.db import models


class ItemEngagement(models.Model):
    """What one user engages with: counts and times of their interactions with one item.

    `by_type` holds a count per interaction name (`view`, `query`, `mention`, or
    whatever a client sends); the drain merges it in SQL inside the upsert, so
    concurrent drains never lose a count. `score` is the stored score as of
    `scored_at` (the daily job refreshes it); answers compute it for their own
    moment from the counts and times (engagement/loops/scoring.py).
    """

    user = models.ForeignKey(
        "engagement.EndUser", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    item = models.CharField(max_length=255)
    interactions = models.PositiveBigIntegerField(default=0)
    by_type = models.JSONField(default=dict, blank=True)
    first_interaction_at = models.DateTimeField()
    last_interaction_at = models.DateTimeField()
    # The first 200 characters of the latest interaction's text: may quote the user (erased with them).
    context = models.CharField(max_length=200, blank=True, default="")
    score = models.FloatField(default=0.0)
    scored_at = models.DateTimeField()

    class Meta:
        verbose_name = "item engagement"
        constraints = [
            models.UniqueConstraint(fields=["user", "item"], name="itemengagement_user_item_uniq")
        ]
        # No index on last_interaction_at: every drain moves it, and the weekly cleanup walks
        # the table in id chunks anyway.

    def __str__(self):
        return f"{self.item} (user #{self.user_id})"


class Calibration(models.Model):
    """A value learned per tenant by a tuning job; one row per (tenant, key), updated in place."""

    tenant = models.ForeignKey("engagement.Tenant", on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    value = models.FloatField()
    sample_size = models.PositiveBigIntegerField(default=0)
    window_days = models.PositiveIntegerField()
    computed_at = models.DateTimeField()
    job_run = models.ForeignKey(
        "engagement.JobRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "key"], name="calibration_tenant_key_uniq")
        ]
        ordering = ["tenant_id", "key"]

    def __str__(self):
        return f"{self.key} (tenant #{self.tenant_id})"


class CalibrationHistory(models.Model):
    """Every change of a calibration: old and new value, who made it, from which run and window."""

    tenant = models.ForeignKey("engagement.Tenant", on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    old_value = models.FloatField(null=True, blank=True)  # null: the calibration did not exist
    new_value = models.FloatField(null=True, blank=True)  # null: removed (a rollback of a creation)
    sample_size = models.PositiveBigIntegerField(default=0)
    job_kind = models.CharField(max_length=100, blank=True, default="")
    job_run = models.ForeignKey(
        "engagement.JobRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    window_start = models.DateTimeField(null=True, blank=True)
    window_end = models.DateTimeField(null=True, blank=True)
    actor = models.CharField(max_length=200)  # job:<kind> or staff:<username>
    changed_at = models.DateTimeField()
    rollback_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name = "calibration change"
        verbose_name_plural = "calibration history"
        indexes = [
            models.Index(fields=["tenant", "key", "changed_at"], name="calhistory_tenant_key_idx")
        ]
        ordering = ["-changed_at", "-pk"]

    def __str__(self):
        return f"{self.key} {self.old_value} → {self.new_value} (tenant #{self.tenant_id})"
