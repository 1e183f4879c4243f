"""PULSE_USER_ERASE_HANDLERS entry: `handler(erasure)` → counts (engagement/extension_points.py)."""

from .models import Message, Preference

PENDING = [Message.Status.QUEUED, Message.Status.SENDING]


def scrub_messages(erasure) -> dict:
    """Rendered content, context and keys go; pending messages are cancelled. The rows stay as
    counts (template, status, times) so delivery figures stay right."""
    mine = Message.objects.filter(user_id__in=erasure.user_ids)
    cancelled = mine.filter(status__in=PENDING).update(
        status=Message.Status.CANCELLED, lease_token="", lease_expires_at=None
    )
    scrubbed = mine.update(
        context={}, subject="", text="", html="", rendered_actions=[], idempotency_key=None,
        content_hash="", last_error="", destination="",
    )
    preferences = Preference.objects.filter(user_id__in=erasure.user_ids).delete()[0]
    return {"messages_scrubbed": scrubbed, "messages_cancelled": cancelled,
            "preferences_removed": preferences}
