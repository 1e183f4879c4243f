"""The outbox port (PULSE_OUTBOX): queueing messages, at most once per idempotency key.

`queue_messages(rows)` runs inside the caller's transaction, so a state change
and the message it causes commit together. It inserts set-based (one
insert-or-ignore per chunk, then one query for the keys that were already
there) and reports, row by row, whether the message is new. Keys are unique
per source. A repeated key whose user, template and context are the same is
the existing message; with other content it is an `idempotency_conflict`.
Delivery is woken after commit.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from engagement.bulk import insert_returning
from engagement.idempotency import IdempotencyConflict, digest

from .models import Channel, Message, MessageTemplate
from .wake import wake_delivery_on_commit


class UnknownTemplate(LookupError):
    pass


@dataclass
class MessageRow:
    user_id: int
    template: str  # the template key
    context: dict = field(default_factory=dict)
    idempotency_key: str | None = None
    source: str = Message.Source.API
    scheduled_for: datetime | None = None


@dataclass(frozen=True)
class Queued:
    message_id: int
    created: bool
    conflict: bool = False


def _coerce(row) -> MessageRow:
    return row if isinstance(row, MessageRow) else MessageRow(**row)


def live_templates(keys) -> dict[str, MessageTemplate]:
    return {
        t.key: t
        for t in MessageTemplate.objects.filter(key__in=set(keys), archived_at__isnull=True,
                                                current_version__isnull=False)
        .select_related("current_version")
    }


def queue_messages(rows: Sequence, *, now: datetime) -> list[Queued]:
    """Queue `rows` (MessageRow or dicts of its fields); one Queued per row, in order.

    Raises UnknownTemplate (naming the keys) before writing anything when a
    template does not exist or is archived."""
    rows = [_coerce(r) for r in rows]
    if not rows:
        return []
    templates = live_templates(r.template for r in rows)
    unknown = sorted({r.template for r in rows} - set(templates))
    if unknown:
        raise UnknownTemplate(", ".join(unknown))
    values = [_values(r, templates[r.template], now) for r in rows]
    written = insert_returning(
        Message, values, conflict_fields=["source", "idempotency_key"],
        returning=("id", "source", "idempotency_key"),
    )
    by_key = {(w["source"], w["idempotency_key"]): w["id"] for w in written if w["idempotency_key"]}
    unkeyed = iter(w["id"] for w in written if not w["idempotency_key"])
    existing = _existing(values, by_key)
    results = []
    for value in values:
        key = (value["source"], value["idempotency_key"])
        if value["idempotency_key"] is None:
            results.append(Queued(next(unkeyed), created=True))
        elif key in by_key:
            results.append(Queued(by_key.pop(key), created=True))
            existing[key] = (results[-1].message_id, value["content_hash"])
        else:
            message_id, stored_hash = existing[key]
            same = stored_hash == value["content_hash"]
            results.append(Queued(message_id, created=False, conflict=not same))
    if written:
        wake_delivery_on_commit()
    return results


def queue_message(*, now: datetime, **row) -> Queued:
    """One message; raises IdempotencyConflict for a key reused with other content."""
    result = queue_messages([row], now=now)[0]
    if result.conflict:
        raise IdempotencyConflict()
    return result


def _values(row: MessageRow, template: MessageTemplate, now: datetime) -> dict:
    version = template.current_version
    scheduled = row.scheduled_for or now
    return {
        "user_id": row.user_id,
        "template_id": template.pk,
        "template_version_id": version.pk,
        "channel": template.channel,
        "category": version.category,
        "destination": version.url if template.channel == Channel.WEBHOOK else "",
        "context": row.context or {},
        "scheduled_for": scheduled,
        "next_attempt_at": scheduled,
        "status": Message.Status.QUEUED,
        "idempotency_key": row.idempotency_key,
        "content_hash": content_hash(row.user_id, template.key, row.context) if row.idempotency_key else "",
        "source": row.source,
        "created_at": now,
        **BLANK,
    }


# The insert is raw SQL: every other column gets its model default here.
BLANK = {
    "skip_reason": "", "attempts": 0, "lease_token": "", "lease_expires_at": None, "gated_at": None,
    "last_error": "", "sent_at": None, "read_at": None, "provider_id": "", "locale": "", "subject": "",
    "text": "", "html": "", "rendered_actions": [],
}


def content_hash(user_id: int, template_key: str, context: dict | None) -> str:
    return digest({"user": user_id, "template": template_key, "context": context or {}})


def _existing(values, inserted: dict) -> dict:
    """(source, key) → (id, content hash) of keys that were stored before: one query."""
    wanted = {(v["source"], v["idempotency_key"]) for v in values if v["idempotency_key"]} - set(inserted)
    if not wanted:
        return {}
    found = Message.objects.filter(
        source__in={s for s, _ in wanted}, idempotency_key__in={k for _, k in wanted}
    ).values_list("source", "idempotency_key", "id", "content_hash")
    return {(s, k): (i, h) for s, k, i, h in found if (s, k) in wanted}
