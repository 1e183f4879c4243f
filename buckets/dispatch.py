"""Dispatching reactions from transitions, exactly once.

Transitions are the outbox: a transition that `fires` is dispatched once,
and `dispatched_at` records it. `memberships.py` dispatches in the very
transaction that writes the transition, so the membership change, its
transition, its signal and its messages commit together or not at all: a
crash at any point leaves either nothing (the signals are still queued and
the next drain redoes all of it) or everything. `dispatch_pending` is the
safety net for a transition committed without its dispatch (a path that
defers it, or a bug): it claims undispatched ones (`SKIP LOCKED` on
PostgreSQL) and dispatches them in its own transaction. Every message and
signal a reaction makes carries the key `bucket:<bucket>:<transition>:<reaction>`,
so dispatching a transition again creates nothing.

A reaction is `message` (a template through the outbox, source `bucket`),
`webhook` (a webhook template of category `system`) or `signal` (a system
signal other buckets can watch). A template that is missing, archived or of
the wrong kind at dispatch time is recorded in the transition's `dispatch_log`
and the other reactions still go.
"""

import logging
from collections.abc import Sequence
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from campaigns.models import Category, Channel, Message
from campaigns.outbox import live_templates, queue_messages
from engagement.ingest import SystemSignal, record_system_signals

from .models import BucketTransition

log = logging.getLogger("pulse.buckets")
PENDING_CHUNK = 500
ON = {"entered": "enter", "left": "leave"}


def reactions_for(spec, on: str, reason: str) -> list:
    """The bucket's reactions to one kind of transition (leave reactions may filter by reason)."""
    return [r for r in spec.reactions
            if r.on == on and (on == "enter" or not r.reasons or reason in r.reasons)]


def reaction_key(transition: dict, reaction) -> str:
    return f"bucket:{transition['bucket_id']}:{transition['id']}:{reaction.key}"


def message_context(spec, transition: dict) -> dict:
    context = {"bucket": spec.slug, "bucket_name": spec.name, "transition": transition["kind"],
               "entry_count": transition["entry_count"], "occurred_at": transition["occurred_at"].isoformat()}
    if transition["kind"] == "left":
        context["reason"] = transition["reason"]
    return context


def dispatch(spec, transitions: Sequence[dict], *, now: datetime) -> None:
    """Queue every reaction of these firing transitions and mark them dispatched.

    In the caller's transaction; a bounded number of queries for any number of
    transitions (one template read, the outbox insert, the signal insert, the mark)."""
    if not transitions:
        return
    planned = [(t, r) for t in transitions for r in reactions_for(spec, ON[t["kind"]], t.get("reason", ""))]
    logs: dict[int, list] = {t["id"]: [] for t in transitions}
    templates = live_templates({r.target for _, r in planned if r.action != "signal"})
    messages, signals = [], []
    for transition, reaction in planned:
        entry = {"reaction": reaction.key}
        problem = _template_problem(reaction, templates.get(reaction.target))
        if problem:
            entry["error"] = problem
        elif reaction.action == "signal":
            signals.append(SystemSignal(
                transition["user_id"], reaction.target, f"bucket:{spec.slug}",
                properties={"bucket": spec.slug, "transition": transition["kind"], "reaction": reaction.key},
                occurred_at=transition["occurred_at"], idempotency_key=reaction_key(transition, reaction)))
            entry["signal"] = reaction.target
        else:
            messages.append((entry, {"user_id": transition["user_id"], "template": reaction.target,
                                     "context": message_context(spec, transition),
                                     "idempotency_key": reaction_key(transition, reaction),
                                     "source": Message.Source.BUCKET}))
        logs[transition["id"]].append(entry)
    if messages:
        for (entry, _), queued in zip(messages, queue_messages([row for _, row in messages], now=now),
                                      strict=True):
            entry["message_id"] = queued.message_id
    record_system_signals(signals, now=now)
    _mark_dispatched(logs, now)
    failed = sum(1 for entries in logs.values() for e in entries if "error" in e)
    if failed:
        log.warning("event=bucket_reaction_failed bucket_id=%d reactions=%d", spec.id, failed)


def _template_problem(reaction, template) -> str | None:
    if reaction.action == "signal":
        return None
    if template is None:
        return f"template {reaction.target} is missing or archived"
    if reaction.action == "webhook" and (
        template.channel != Channel.WEBHOOK or template.current_version.category != Category.SYSTEM
    ):
        return f"template {reaction.target} is not a webhook template of category system"
    return None


def _mark_dispatched(logs: dict[int, list], now: datetime) -> None:
    rows = [BucketTransition(pk=pk, dispatched_at=now, dispatch_log=entries) for pk, entries in logs.items()]
    BucketTransition.objects.bulk_update(rows, ["dispatched_at", "dispatch_log"], batch_size=500)


def dispatch_pending(*, now: datetime | None = None, limit: int = PENDING_CHUNK) -> int:
    """Dispatch firing transitions that were committed undispatched; returns how many."""
    from .candidates import BucketSpec
    from .models import Bucket

    now = now or timezone.now()
    with transaction.atomic():
        claimed = _claim_pending(limit)
        by_bucket: dict[int, list[dict]] = {}
        for row in claimed:
            by_bucket.setdefault(row["bucket_id"], []).append(row)
        for bucket in Bucket.objects.filter(pk__in=list(by_bucket)).prefetch_related("reactions"):
            dispatch(BucketSpec.of(bucket), by_bucket[bucket.pk], now=now)
    if claimed:
        log.info("event=bucket_dispatch_pending transitions=%d", len(claimed))
    return len(claimed)


def _claim_pending(limit: int) -> list[dict]:
    pending = BucketTransition.objects.filter(fires=True, dispatched_at__isnull=True).order_by("pk")
    if connection.vendor == "postgresql":
        pending = pending.select_for_update(skip_locked=True)
    return list(pending.values("id", "bucket_id", "user_id", "kind", "entry_count", "reason",
                               "occurred_at")[:limit])


def tick_hook(now: datetime) -> None:
    """PULSE_TICK_HOOKS: one bounded chunk of undispatched transitions per tick."""
    dispatch_pending(now=now)
