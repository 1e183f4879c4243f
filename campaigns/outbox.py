"""The outbox port (PULSE_OUTBOX): queueing messages, at most once per idempotency key.

`queue_messages(rows)` runs inside the caller's transaction, so a state change
and the message it causes commit together. It inserts set-based (one
insert-or-ignore per chunk, then one query for the keys that were already
there) and reports, row by row, whether the message is new. Keys are unique
per source. A repeated key whose user, template and context are the same is
the existing message; with other content it is an `idempotency_conflict`.
Delivery is woken after commit.

The same function takes a `MessageSet` (engagement/outbox_port.py) instead of
rows: many users, one template, context and source, keyed `<user id><suffix>`.
It is written as one `INSERT … SELECT` from the ids (`bulk.insert_select`) with
the column values the row path computes, per-user only the content hash
(blake2b, which neither database has, so Python computes it), and answers a
`QueuedSet`. A loop's chunk of moved users goes this way: binding ~25 column
values per message was most of the daily job's time (docs/BENCHMARKS.md).
"""

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from engagement.bulk import insert_returning, insert_select
from engagement.idempotency import HASH_BYTES, IdempotencyConflict, canonical_json, digest
from engagement.outbox_port import MessageSet, QueuedSet

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


def queue_messages(rows: Sequence | MessageSet, *, now: datetime) -> list[Queued] | QueuedSet:
    """Queue `rows` (MessageRow or dicts of its fields); one Queued per row, in order.
    A MessageSet instead queues its users set-based and answers a QueuedSet.

    Raises UnknownTemplate (naming the keys) before writing anything when a
    template does not exist or is archived."""
    if isinstance(rows, MessageSet):
        return queue_message_set(rows, now=now)
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


def queue_message_set(batch: MessageSet, *, now: datetime) -> QueuedSet:
    """The set path: one INSERT … SELECT (insert-or-ignore on (source, key)); when some keys
    were already stored, one more query tells the same content from a conflict."""
    user_ids = sorted(set(batch.user_ids))
    if not user_ids:  # like an empty list of rows: nothing to check, no query
        return QueuedSet()
    templates = live_templates([batch.template])
    if batch.template not in templates:
        raise UnknownTemplate(batch.template)
    template = templates[batch.template]
    shared = _values(MessageRow(0, template.key, batch.context, batch.key_suffix, batch.source,
                                batch.scheduled_for), template, now)
    for per_user in ("user_id", "idempotency_key", "content_hash"):
        del shared[per_user]
    hashes = content_hashes(user_ids, template.key, batch.context)
    written = insert_select(
        Message, {"user_id": user_ids, "content_hash": hashes}, constants=shared,
        expressions={"idempotency_key": ("CAST(s.user_id AS TEXT) || %s", [batch.key_suffix])},
        conflict_fields=["source", "idempotency_key"], returning=("user_id",),
    )
    created = sorted(uid for (uid,) in written)
    if created:
        wake_delivery_on_commit()
    if len(created) == len(user_ids):
        return QueuedSet(created=created)
    return _judge_stored(batch, user_ids, hashes, created)


def _judge_stored(batch: MessageSet, user_ids, hashes, created) -> QueuedSet:
    """Users whose key was already stored: the same message (same hash) or a conflict."""
    new = set(created)
    expected = {batch.key_of(uid): (uid, digest_) for uid, digest_ in zip(user_ids, hashes, strict=True)
                if uid not in new}
    stored = dict(Message.objects.filter(source=batch.source, idempotency_key__in=list(expected))
                  .values_list("idempotency_key", "content_hash"))
    existing, conflicts = [], []
    for key, (uid, expected_hash) in expected.items():
        (existing if stored.get(key) == expected_hash else conflicts).append(uid)
    return QueuedSet(created=created, existing=existing, conflicts=conflicts)


def content_hashes(user_ids: Sequence[int], template_key: str, context: dict | None) -> list[str]:
    """`content_hash` for many users of one template and context, without re-serialising
    the context per user: the canonical JSON ends with `"user":<id>}` (keys are sorted)."""
    text = canonical_json({"context": context or {}, "template": template_key, "user": 0})
    head = text[: -len("0}")]
    if not head.endswith('"user":'):
        raise RuntimeError("the canonical JSON no longer ends with the user")
    head_bytes = head.encode("utf-8", "surrogatepass")
    return [hashlib.blake2b(head_bytes + b"%d}" % uid, digest_size=HASH_BYTES).hexdigest()
            for uid in user_ids]


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
