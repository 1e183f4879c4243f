"""Buckets: definitions, their reactions, memberships and the transitions between them.

A membership is one stay of a user in a bucket: `active` until it is `left`.
At most one active row per (bucket, user) — a partial unique index on both
databases — and every earlier stay is kept as history. Every join and leave
writes a `BucketTransition` in the same transaction; transitions are the
outbox of reactions: one with `fires` set is dispatched exactly once
(`dispatched_at`), see `buckets/dispatch.py`.
"""

from django.db import models
from django.db.models import Q


class Bucket(models.Model):
    """A segment of users: `dynamic` from criteria, or `manual`."""

    class Kind(models.TextChoices):
        DYNAMIC = "dynamic"
        MANUAL = "manual"

    class EntryLimit(models.TextChoices):
        ALWAYS = "always"
        ONCE = "once"
        ONCE_PER_PERIOD = "once_per_period"

    slug = models.SlugField(max_length=100, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.DYNAMIC)
    criteria = models.JSONField(null=True, blank=True)
    enabled = models.BooleanField(default=True)
    criteria_fingerprint = models.CharField(max_length=64, blank=True, default="", editable=False)
    # Which entries fire the enter reactions (the row and its entry count are always written).
    entry_limit = models.CharField(max_length=20, choices=EntryLimit.choices, default=EntryLimit.ALWAYS)
    entry_period = models.DurationField(null=True, blank=True)
    # Set when the criteria change: the next evaluations re-check the active members in chunks.
    reevaluate_members = models.BooleanField(default=False, editable=False)
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


class BucketReaction(models.Model):
    """What happens when a user enters or leaves a bucket: a message, a webhook or a signal."""

    class On(models.TextChoices):
        ENTER = "enter"
        LEAVE = "leave"

    class Action(models.TextChoices):
        MESSAGE = "message"  # a template through the outbox
        WEBHOOK = "webhook"  # a webhook template of category system
        SIGNAL = "signal"  # a system signal other buckets can watch

    bucket = models.ForeignKey(Bucket, on_delete=models.CASCADE, related_name="reactions")
    key = models.CharField(max_length=64)  # the reaction's id, unique in its bucket
    on = models.CharField(max_length=10, choices=On.choices)
    reasons = models.JSONField(default=list, blank=True)  # leave reactions: only these reasons ([] = any)
    action = models.CharField(max_length=10, choices=Action.choices)
    target = models.CharField(max_length=200)  # the template key or the signal name
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["bucket", "position", "id"]
        constraints = [models.UniqueConstraint(fields=["bucket", "key"], name="bucketreaction_key_uniq")]

    def __str__(self):
        return f"{self.key}: on {self.on} {self.action} {self.target}"


class LeaveReason(models.TextChoices):
    """Why a stay ended; the clock-driven issue adds its own (window, dwell …)."""

    CRITERIA = "criteria"
    MANUAL = "manual"
    ERASED = "erased"
    DISABLED = "disabled"
    MERGED = "merged"  # a merged-away duplicate stay of the same person (no transition)


class MembershipSource(models.TextChoices):
    """What made a user a member; the clock adds `sweep` and `backfill`."""

    SIGNAL = "signal"
    MANUAL = "manual"
    SWEEP = "sweep"
    BACKFILL = "backfill"


class BucketMembership(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active"
        LEFT = "left"

    bucket = models.ForeignKey(Bucket, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey("engagement.EndUser", on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    entered_at = models.DateTimeField()
    left_at = models.DateTimeField(null=True, blank=True)
    leave_reason = models.CharField(max_length=20, choices=LeaveReason.choices, blank=True, default="")
    entry_count = models.PositiveIntegerField()  # 1 + the user's earlier stays in this bucket
    source = models.CharField(max_length=10, choices=MembershipSource.choices)
    last_evaluated_at = models.DateTimeField()
    # The criteria fingerprint the row was last evaluated under (stale after a criteria change).
    criteria_fingerprint = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["bucket", "user"], condition=Q(status="active"),
                                    name="bucketmembership_one_active"),
            models.UniqueConstraint(fields=["bucket", "user", "entry_count"],
                                    name="bucketmembership_entry_uniq"),
        ]
        indexes = [
            models.Index(fields=["user", "bucket"], name="bucketmembership_user"),
            models.Index(fields=["bucket", "status", "entered_at"], name="bucketmembership_members"),
        ]

    def __str__(self):
        return f"{self.bucket_id}:{self.user_id} #{self.entry_count} {self.status}"


class BucketTransition(models.Model):
    """A join or a leave, written with the membership change; the outbox of its reactions."""

    class Kind(models.TextChoices):
        ENTERED = "entered"
        LEFT = "left"

    bucket = models.ForeignKey(Bucket, on_delete=models.CASCADE, related_name="transitions")
    user = models.ForeignKey("engagement.EndUser", on_delete=models.CASCADE, related_name="+")
    membership = models.ForeignKey(BucketMembership, on_delete=models.CASCADE, related_name="transitions")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    entry_count = models.PositiveIntegerField()
    reason = models.CharField(max_length=20, blank=True, default="")  # a leave's reason
    source = models.CharField(max_length=10, choices=MembershipSource.choices)
    occurred_at = models.DateTimeField()
    # Caused by something live (not history, a replay, a disable or an erasure).
    realtime = models.BooleanField()
    # Whether reactions apply: realtime and, for an entry, allowed by the entry limit.
    fires = models.BooleanField()
    dispatched_at = models.DateTimeField(null=True, blank=True)
    # What dispatch did per reaction: [{"reaction", "message_id"? , "signal"?, "error"?}].
    dispatch_log = models.JSONField(default=list, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["bucket", "user", "kind", "entry_count"],
                                    name="buckettransition_uniq"),
        ]
        indexes = [
            models.Index(fields=["bucket", "occurred_at"], name="buckettransition_time"),
            models.Index(fields=["id"], condition=Q(fires=True, dispatched_at__isnull=True),
                         name="buckettransition_undispatched"),
        ]

    def __str__(self):
        return f"{self.bucket_id}:{self.user_id} {self.kind} #{self.entry_count}"


class IndexVersion(models.Model):
    """One row: bumped in the same transaction as any change to what real time evaluates
    (criteria, enabled, kind, reactions), so workers refresh their cached candidate index."""

    version = models.BigIntegerField(default=0)

    def __str__(self):
        return f"v{self.version}"
