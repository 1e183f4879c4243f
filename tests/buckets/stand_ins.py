"""Test-only tables in the documented shapes of the lifecycle and profile sources.

The lifecycle (engagement.loops) and profiles apps land in their own issues;
until then the criteria compiler's `lifecycle` and `profile` leaves are
tested against these stand-ins, named through PULSE_BUCKET_SOURCES exactly
as the real models will be. `user_id` is a plain column, not a foreign key,
so flushing end users in other tests never trips over these tables.
"""

from django.db import models

APP = "bucket_stand_ins"
STATES = ["new", "active", "at_risk", "dormant", "churned", "reactivated"]
refresh_calls = []


class LifecycleState(models.Model):
    user_id = models.BigIntegerField(unique=True)
    state = models.CharField(max_length=30, choices=[(s, s) for s in STATES])

    class Meta:
        app_label = APP
        db_table = "test_bucket_lifecycle_state"

    def __str__(self):
        return self.state


class ProfileFeatureValue(models.Model):
    user_id = models.BigIntegerField()
    name = models.CharField(max_length=200)
    value = models.FloatField(null=True)
    value_text = models.CharField(max_length=500, null=True)
    computed_at = models.DateTimeField()

    class Meta:
        app_label = APP
        db_table = "test_bucket_profile_feature_value"
        constraints = [models.UniqueConstraint(fields=["user_id", "name"], name="test_bucket_pfv_uniq")]

    def __str__(self):
        return self.name


def refresh_expired(features, users_queryset, now):
    """Records each call; the real one recomputes expired values set-based."""
    refresh_calls.append((list(features), sorted(users_queryset.values_list("pk", flat=True)), now))


SOURCES = {
    "lifecycle": f"{__name__}.LifecycleState",
    "profile": f"{__name__}.ProfileFeatureValue",
    "profile_refresh": f"{__name__}.refresh_expired",
}
