"""The memberships panel on the user's admin page (PULSE_USER_ADMIN_PANELS)."""

from .models import BucketMembership

LATEST = 50


def memberships_panel(user) -> dict:
    """Current buckets and the latest stays, newest first: one query."""
    stays = list(BucketMembership.objects.filter(user=user).select_related("bucket")
                 .order_by("-entered_at", "-pk")[:LATEST])
    return {
        "title": f"Buckets (latest {LATEST} stays)",
        "template": "admin/buckets/panels/memberships.html",
        "context": {"current": [m for m in stays if m.status == "active"],
                    "past": [m for m in stays if m.status != "active"]},
    }
