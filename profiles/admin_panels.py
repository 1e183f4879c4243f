"""The profile panel on the user's admin page (PULSE_USER_ADMIN_PANELS): stored values
as they are (a peek: one query, nothing computed), and the Rebuild profile button."""

from django.utils import timezone

from .reads import peek_profile


def profile_panel(user) -> dict:
    now = timezone.now()
    readings = peek_profile(user, now)
    return {
        "title": "Profile features",
        "template": "admin/profiles/panels/profile.html",
        "context": {"readings": list(readings.values()), "now": now, "can_rebuild": user.deleted_at is None},
    }
