"""Every entry of PULSE_SIGNAL_HANDLERS keeps the SignalHandler contract (engagement/extension_points.py).

Run twice over the same batch, a handler leaves the state of the first run (idempotence: the
drain retries halves of a failed batch, replay re-runs processed signals); and its query count
for a batch of 50 is the one for a batch of 5 (set-based). The handlers are read from settings,
so one added later is checked without editing this file. "State" is every row of every model
of Pulse's own apps.
"""

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django.utils.module_loading import import_string

from engagement.models import EndUser, Signal
from engagement.pipeline import HandlerContext, claim_batch
from tests.factories import EndUserFactory, MembershipFactory, SignalFactory, TenantFactory

pytestmark = pytest.mark.django_db

HANDLERS = list(settings.PULSE_SIGNAL_HANDLERS)
SMALL, LARGE = 5, 50
CONTEXTS = {"drain": {}, "replay": {"replay": True}}


# --- the harness ------------------------------------------------------------


def pulse_models():
    """The models of the project's own apps (not Django's or third parties')."""
    base = Path(settings.BASE_DIR).resolve()
    for config in apps.get_app_configs():
        path = Path(config.path).resolve()
        if path.is_relative_to(base) and "site-packages" not in path.parts:
            yield from config.get_models()


def snapshot() -> dict[str, list[dict]]:
    return {m._meta.label: list(m._base_manager.order_by("pk").values()) for m in pulse_models()}


def build_batch(size: int, now) -> list[Signal]:
    """A claimed batch as the drain hands it over: several users and tenants; api, segment,
    system and imported signals; live and historical ones (older than the users' first sight)."""
    tenants = [TenantFactory(), TenantFactory()]
    users = [EndUserFactory(first_seen_at=now - timedelta(days=3)) for _ in range(max(2, size // 5))]
    for user in users[::2]:
        MembershipFactory(user=user, tenant=tenants[0])
    for i in range(size):
        user, at = users[i % len(users)], now - timedelta(minutes=i)
        kind = i % 5
        if kind == 0:
            SignalFactory(user=user, name="app.opened", occurred_at=at)
        elif kind == 1:
            SignalFactory(user=user, name="item.viewed", feature="docs", item=f"doc-{i % 3}",
                          interaction="view", tenant=tenants[i % 2], occurred_at=at)
        elif kind == 2:
            SignalFactory(user=user, name="Page Viewed", source=Signal.Source.SEGMENT, occurred_at=at,
                          properties={"path": "/pricing"}, context={"locale": "en-GB"})
        elif kind == 3:
            SignalFactory(user=user, name="$identify", source=Signal.Source.SYSTEM, occurred_at=at,
                          properties={"changed": ["email"]})
        else:
            SignalFactory(user=user, name="order.placed", source=Signal.Source.IMPORT, realtime=False,
                          occurred_at=now - timedelta(days=10 + i), tenant=tenants[0])
    batch = claim_batch(size)
    assert len(batch) == size
    return batch


def run(handler, batch, context) -> int:
    """One run inside its own transaction, as the drain does; returns its query count."""
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        handler(batch, context)
    return len(queries.captured_queries)


def assert_idempotent(handler, batch, context) -> None:
    """A second run changes nothing. An accumulating handler (a counter: see
    extension_points.SignalHandler) relies on the claim for exactly-once in the drain, so
    its second run is the one that can happen to it: a replay of the same signals."""
    run(handler, batch, context)
    first = snapshot()
    again = replace(context, replay=True) if getattr(handler, "accumulates", False) else context
    run(handler, batch, again)
    assert snapshot() == first, "a second run over the same batch changed the state"


def assert_set_based(handler, now, context) -> None:
    run(handler, [], context)  # per-process caches (the buckets' candidate index) are filled once
    counts = {}
    for size in (SMALL, LARGE):
        batch = build_batch(size, now)
        counts[size] = (run(handler, batch, context), run(handler, batch, context))
    assert counts[SMALL] == counts[LARGE], f"queries (first run, second run) by batch size: {counts}"


# --- every registered handler -------------------------------------------------


@pytest.mark.parametrize("context", CONTEXTS)
@pytest.mark.parametrize("path", HANDLERS)
def test_a_second_run_of_each_handler_over_the_same_batch_changes_nothing(path, context, now):
    handler = import_string(path)
    for size in (SMALL, LARGE):
        assert_idempotent(handler, build_batch(size, now), HandlerContext(now=now, **CONTEXTS[context]))


@pytest.mark.parametrize("context", CONTEXTS)
@pytest.mark.parametrize("path", HANDLERS)
def test_each_handlers_query_count_does_not_grow_with_the_batch(path, context, now):
    assert_set_based(import_string(path), now, HandlerContext(now=now, **CONTEXTS[context]))


# --- the harness can fail -------------------------------------------------------


def drifting_handler(signals, context):
    """Set-based but not idempotent: every run moves first_seen_at again."""
    ids = sorted({s.user_id for s in signals})
    EndUser.objects.filter(pk__in=ids).update(first_seen_at=F("first_seen_at") - timedelta(seconds=1))


def per_signal_handler(signals, context):
    """Idempotent but one query per signal."""
    for signal in signals:
        EndUser.objects.filter(pk=signal.user_id).update(reengagement_opt_out=False)


def test_the_harness_catches_a_handler_that_is_not_idempotent(now):
    with pytest.raises(AssertionError, match="second run"):
        assert_idempotent(drifting_handler, build_batch(SMALL, now), HandlerContext(now=now))


def test_the_harness_catches_a_handler_that_queries_per_signal(now):
    with pytest.raises(AssertionError, match="by batch size"):
        assert_set_based(per_signal_handler, now, HandlerContext(now=now))


def test_the_snapshot_sees_what_the_core_handler_derives(now):
    batch = build_batch(SMALL, now)
    before = snapshot()
    run(import_string("engagement.handlers.record_last_seen"), batch, HandlerContext(now=now))
    assert snapshot() != before


def test_the_snapshot_covers_pulse_models_and_no_others():
    labels = {m._meta.label for m in pulse_models()}
    assert {"engagement.EndUser", "engagement.Signal", "engagement.Membership"} <= labels
    assert not any(label.startswith(("auth.", "admin.", "sessions.")) for label in labels)
