"""Failed staff logins, the shared state behind admin login throttling.

One row per failed attempt and per thing it counts against (the username, the
client address), so every web process on every machine sees the same count.
Neither is stored in clear: `key` is a keyed hash (see `login_throttle.throttle_key`).
"""

from django.db import models


class LoginFailure(models.Model):
    key = models.CharField(max_length=80)
    failed_at = models.DateTimeField()

    class Meta:
        verbose_name = "failed login"
        indexes = [
            models.Index(fields=["key", "failed_at"], name="loginfailure_key_time_idx"),
            models.Index(fields=["failed_at"], name="loginfailure_time_idx"),
        ]

    def __str__(self):
        return f"failed login #{self.pk}"
