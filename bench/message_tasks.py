"""The Django side of the messages benchmark (bench/messages.py), run by `python -m bench.tasks`:

  message-template                      create the benchmark's in-app template (in the dataset)
  queue-messages --messages N …         queue_messages() for N rows, 500 per transaction, timed
  deliver-messages --start-at EPOCH     deliver_messages() until nothing is due, timed (one worker)

Each prints one JSON line; progress goes to stderr.
"""

import sys
import time
from datetime import datetime

TEMPLATE_KEY = "bench.offer"
TEMPLATE = {
    "channel": "in_app", "category": "marketing", "feature": "offers", "default_locale": "en",
    "variants": {"en": {
        "subject": "An offer for your {{ user.properties.plan }} plan",
        "text": "Hello {{ user.id }}, here is offer {{ context.offer }} (number {{ context.n }}).",
        "html": "<p>Hello {{ user.id }}: <b>{{ context.offer }}</b></p>",
    }},
    "actions": [{"id": "open", "labels": {"en": "Open"}}],
}
# Raised so the cap is evaluated for every message (locks, counts) but skips none of them.
BENCH_CAP = 1_000_000


def _backend_pid() -> int:
    from django.db import connection

    connection.ensure_connection()
    return connection.connection.info.backend_pid


def message_template() -> dict:
    from django.utils import timezone

    from campaigns.templates_as_code import save_template

    saved = save_template(TEMPLATE_KEY, TEMPLATE, actor="benchmark", now=timezone.now())
    return {"template_id": saved.template.pk}


def queue(messages: int, users: int, seed: int, batch: int, now: str) -> dict:
    """queue_messages() over the benchmark's rows, `batch` rows per call and transaction."""
    from django.db import transaction

    from bench.messages import message_rows
    from bench.report import process_cpu
    from campaigns.outbox import MessageRow, queue_messages
    from engagement.models import EndUser

    moment = datetime.fromisoformat(now)
    ids = dict(EndUser.objects.filter(external_id__isnull=False).values_list("external_id", "id"))
    rows = [MessageRow(user_id=ids[r.external_id], template=TEMPLATE_KEY, context=r.context,
                       idempotency_key=r.key, source="campaign")
            for r in message_rows(messages, users, seed)]
    backend = _backend_pid()
    cpu_app, cpu_db = time.process_time(), process_cpu(backend)
    created = 0
    started = time.perf_counter()
    for start in range(0, len(rows), batch):
        with transaction.atomic():
            created += sum(q.created for q in queue_messages(rows[start : start + batch], now=moment))
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "messages": len(rows), "created": created,
            "cpu_app": time.process_time() - cpu_app, "cpu_db": process_cpu(backend) - cpu_db}


def deliver(start_at: float, worker: int) -> dict:
    """One delivery worker: deliver_messages() until nothing is due, from `start_at` (epoch)."""
    from datetime import timedelta

    from django.conf import settings

    from bench.report import process_cpu
    from campaigns import rendering
    from campaigns.delivery import DeliveryResult, deliver_messages

    settings.PULSE_FREQUENCY_CAPS = {"marketing": (BENCH_CAP, timedelta(days=7))}
    rendering.engine(False), rendering.engine(True)  # built before the clock starts
    backend = _backend_pid()
    time.sleep(max(0.0, start_at - time.time()))
    cpu_app, cpu_db = time.process_time(), process_cpu(backend)
    started = time.time()
    total = DeliveryResult()
    while True:  # in slices only to show a running count; each slice is a plain deliver_messages()
        part = deliver_messages(max_batches=20)
        total.add(part)
        if part.batches:
            print(f"-->   worker {worker}: {total.sent:,} sent", file=sys.stderr,
                  flush=True)
        if part.batches < 20:
            break
    ended = time.time()
    return {"started": started, "ended": ended, **total.as_dict(),
            "cpu_app": time.process_time() - cpu_app, "cpu_db": process_cpu(backend) - cpu_db}
