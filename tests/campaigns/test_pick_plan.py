"""The pick walks the due index in claim order even when the statistics are stale (PostgreSQL)."""

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from campaigns.claimed import pick
from tests.conftest import postgres_only
from tests.factories import EndUserFactory

from .helpers import make_template, queue

pytestmark = [postgres_only, pytest.mark.django_db]


def _explained_pick(now, size, after):
    """Run `pick` and answer (its messages, the plan PostgreSQL chose for its statement)."""
    plans = []

    def explain_first(execute, sql, params, many, context):
        if "FOR UPDATE OF m SKIP LOCKED" in sql and not sql.startswith("EXPLAIN"):
            with connection.cursor() as cursor:
                cursor.execute(f"EXPLAIN {sql}", params)
                plans.append("\n".join(row[0] for row in cursor.fetchall()))
        return execute(sql, params, many, context)

    with transaction.atomic(), connection.execute_wrapper(explain_first):
        picked, _prefs, _last = pick(now, size, after=after)
    return picked, plans[0]


def test_a_burst_queued_after_the_last_analysis_is_picked_by_the_index_walk_without_sorting():
    make_template()
    users = [EndUserFactory() for _ in range(20)]
    earlier = timezone.now() - timedelta(hours=2)
    queue(users[0], idempotency_key="old", now=earlier)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE campaigns_message")  # statistics of a nearly empty outbox
    burst = timezone.now() - timedelta(minutes=1)
    for n in range(400):
        queue(users[n % 20], idempotency_key=f"burst-{n}", now=burst)
    after = (burst, 0)  # a keyset past everything the histogram knows
    picked, plan = _explained_pick(timezone.now(), 50, after)
    assert len(picked) == 50
    assert "Sort" not in plan and "message_due_order_idx" in plan, plan


def test_the_pick_leaves_sorting_on_for_the_rest_of_its_transaction():
    make_template()
    queue(EndUserFactory(), idempotency_key="one")
    with transaction.atomic(), connection.cursor() as cursor:
        pick(timezone.now(), 10)
        cursor.execute("SHOW enable_sort")
        assert cursor.fetchone()[0] == "on"
