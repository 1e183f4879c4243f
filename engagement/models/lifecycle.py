"""Each user's place in the engagement lifecycle, and the log of every change to it.

The rules that move a user live in engagement/loops/lifecycle.py (one transition
table, one function and its set-based twin); these are only the rows.
"""

from django.db import models

from .identity import EndUser
from .jobs import JobRun


class LifecycleState(models.Model):
    """One row per user, created at the user's first activity (engagement/activity.py)."""

    class State(models.TextChoices):
        ACTIVE = "active"
        GOODBYE_SENT = "goodbye_sent"
        HELP_FLOW = "help_flow"
        REMIND_LATER = "remind_later"
        DORMANT = "dormant"

    # The user's id is the key: the daily job walks users in keyset chunks of it.
    user = models.OneToOneField(EndUser, primary_key=True, on_delete=models.CASCADE, related_name="+")
    state = models.CharField(max_length=20, choices=State.choices)
    last_activity_at = models.DateTimeField()
    goodbye_sent_at = models.DateTimeField(null=True, blank=True)
    goodbye_expires_at = models.DateTimeField(null=True, blank=True)
    help_expires_at = models.DateTimeField(null=True, blank=True)
    remind_at = models.DateTimeField(null=True, blank=True)
    changed_at = models.DateTimeField()

    class Meta:
        verbose_name = "lifecycle state"
        # The job's chunk bounds: the next few thousand users in one state, by id.
        indexes = [models.Index(fields=["state", "user"], name="lifecycle_state_user_idx")]

    def __str__(self):
        return f"user #{self.user_id}: {self.state}"


class LifecycleTransition(models.Model):
    """One change of state: from, to, trigger, when, what caused it and who."""

    user = models.ForeignKey(EndUser, on_delete=models.CASCADE, related_name="+")
    from_state = models.CharField(max_length=20, blank=True, default="")  # "" at creation
    to_state = models.CharField(max_length=20)
    trigger = models.CharField(max_length=30)
    at = models.DateTimeField()
    actor = models.CharField(max_length=200)
    # The cause: a job run (its kind and window kept when the run is pruned) or a signal.
    job_run = models.ForeignKey(JobRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    job_kind = models.CharField(max_length=100, blank=True, default="")
    job_window = models.DateTimeField(null=True, blank=True)
    signal_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        verbose_name = "lifecycle transition"
        indexes = [
            models.Index(fields=["user", "-at"], name="lifecycle_trans_user_at_idx"),
            models.Index(fields=["at"], name="lifecycle_trans_at_idx"),
        ]

    def __str__(self):
        return f"user #{self.user_id}: {self.from_state or '-'} → {self.to_state} ({self.trigger})"
