"""The JSON shapes of messages in answers."""

from engagement.refs import canonical_ref


def _iso(value):
    return value.isoformat() if value else None


def message_json(message) -> dict:
    return {
        "id": message.pk,
        "user": canonical_ref(message.user),
        "template": message.template.key,
        "template_version": message.template_version.number,
        "channel": message.channel,
        "category": message.category,
        "status": message.status,
        "skip_reason": message.skip_reason or None,
        "source": message.source,
        "idempotency_key": message.idempotency_key,
        "scheduled_for": _iso(message.scheduled_for),
        "sent_at": _iso(message.sent_at),
        "read_at": _iso(message.read_at),
        "attempts": message.attempts,
        "last_error": message.last_error or None,
        "created_at": _iso(message.created_at),
    }


def inbox_json(message) -> dict:
    return {
        "id": message.pk,
        "template": message.template.key,
        "subject": message.subject,
        "text": message.text,
        "html": message.html or None,
        "actions": message.rendered_actions,
        "read_at": _iso(message.read_at),
        "created_at": _iso(message.created_at),
    }
