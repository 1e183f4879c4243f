"""PULSE_USER_ERASE_HANDLERS entry: `handler(user, now)` → counts."""

from .models import Message, Preference

PENDING = [Message.Status.QUEUED, Message.Status.SENDING]


def scrub_messages(user, now) -> dict:
    """Rendered content, context and keys go; pending messages are cancelled. The rows stay as
    counts (template, status, times) so delivery figures stay right."""
    cancelled = Message.objects.filter(user=user, status__in=PENDING).update(
        status=Message.Status.CANCELLED, lease_token="", lease_expires_at=None
    )
    scrubbed = Message.objects.filter(user=user).update(
        context={}, subject="", text="", html="", rendered_actions=[], idempotency_key=None,
        content_hash="", last_error="", destination="",
    )
    preferences = Preference.objects.filter(user=user).delete()[0]
    return {"messages_scrubbed": scrubbed, "messages_cancelled": cancelled,
            "preferences_removed": preferences}
