"""Demo messages for `seed_demo` (PULSE_DEMO_SEEDERS): delivered lifecycle messages and reads.

They are written as history: rows that are already `sent` (nothing is queued,
so nothing is delivered) and ENGAGE signals with `realtime=False` (history
informs, it does not act), so the engagement loop has data on a fresh demo.
Deterministic for a seed; keys make a second run add nothing.
"""

import random
from datetime import datetime, timedelta

from engagement.bulk import insert_returning
from engagement.models import EndUser

from .models import Message, MessageTemplate
from .outbox import BLANK
from .rendering import render
from .system_signals import record_engages

TEMPLATES = ("engagement.help", "engagement.goodbye.self_select")
SHARE_MESSAGED = 0.4
SHARE_READ = 0.5


def seed_messages(*, seed: int, days: int, now: datetime) -> dict:
    templates = {t.key: t for t in MessageTemplate.objects.filter(key__in=TEMPLATES)
                 .select_related("current_version")}
    if not templates:
        return {"messages": 0, "reads": 0, "signals": 0}
    rng = random.Random(f"pulse-demo-messages:{seed}")
    users = list(EndUser.objects.filter(deleted_at__isnull=True, primary_tenant__isnull=False).order_by("pk"))
    rows, reads = [], {}
    for user in users:
        if rng.random() >= SHARE_MESSAGED:
            continue
        template = templates[rng.choice(sorted(templates))]
        sent_at = now - timedelta(minutes=rng.randint(60, max(61, days * 24 * 60)))
        rendered = render(template.current_version, user, {})
        key = f"demo:{seed}:{user.external_id or user.pk}:{template.key}"
        rows.append({
            **BLANK, "user_id": user.pk, "template_id": template.pk,
            "template_version_id": template.current_version_id, "channel": template.channel,
            "category": template.current_version.category, "destination": "", "context": {},
            "scheduled_for": sent_at, "next_attempt_at": sent_at, "status": Message.Status.SENT,
            "idempotency_key": key, "content_hash": "", "source": Message.Source.LIFECYCLE,
            "created_at": sent_at, "sent_at": sent_at, "attempts": 1, "locale": rendered.locale,
            "subject": rendered.subject, "text": rendered.text, "html": rendered.html,
            "rendered_actions": rendered.actions,
        })
        if rng.random() < SHARE_READ:
            read_at = sent_at + timedelta(minutes=rng.randint(1, 600))
            reads[key] = (user, template.current_version.feature, read_at)
    written = insert_returning(Message, rows, conflict_fields=["source", "idempotency_key"],
                               returning=("id", "idempotency_key"))
    engages = []
    for row in written:
        if row["idempotency_key"] not in reads:
            continue
        user, feature, read_at = reads[row["idempotency_key"]]
        read_at = min(read_at, now)
        Message.objects.filter(pk=row["id"]).update(read_at=read_at)
        # keyed by the demo key, not the id, so the same seed always writes the same signals
        engages.append((user.pk, user.primary_tenant_id, feature, row["id"], read_at,
                        f"engage:{row['idempotency_key']}"))
    if engages:
        record_engages(engages, actor="demo", now=now, realtime=False)
    return {"messages": len(written), "reads": len(engages), "signals": len(engages)}
