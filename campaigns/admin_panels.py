"""Panels on the user's admin page (PULSE_USER_ADMIN_PANELS): preferences and the inbox."""

from .models import Channel, Message, Preference
from .preferences import as_json

INBOX_ROWS = 20


def preferences_panel(user) -> dict:
    pref = Preference.objects.filter(user=user).first()
    return {
        "title": "Message preferences",
        "template": "admin/campaigns/panels/preferences.html",
        "context": {"preferences": as_json(pref), "pref": pref},
    }


def inbox_panel(user) -> dict:
    rows = list(
        Message.objects.filter(user=user, channel=Channel.IN_APP)
        .select_related("template").order_by("-created_at", "-pk")[:INBOX_ROWS]
    )
    return {
        "title": f"In-app inbox (latest {INBOX_ROWS})",
        "template": "admin/campaigns/panels/inbox.html",
        "context": {"messages": rows},
    }
