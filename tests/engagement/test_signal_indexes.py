"""The log's two hot lookups are index scans on both databases."""

from datetime import timedelta

import pytest
from django.db import connection

from engagement.models import Signal
from tests.factories import SignalFactory, TenantFactory

pytestmark = pytest.mark.django_db

LOOKUPS = [
    (
        "signal_user_name_time_idx",
        lambda s, t: Signal.objects.filter(user_id=s.user_id, name="n1", occurred_at__gt=t),
    ),
    (
        "signal_tenant_name_time_idx",
        lambda s, t: Signal.objects.filter(tenant_id=s.tenant_id, name="n1", occurred_at__gt=t),
    ),
]


@pytest.mark.parametrize(("index", "query"), LOOKUPS)
def test_named_signals_after_a_time_use_their_index(index, query, now):
    tenants = TenantFactory.create_batch(10)
    users = [SignalFactory(tenant=t).user for t in tenants]
    Signal.objects.bulk_create(
        [
            Signal(
                user=users[i % 10],
                tenant=tenants[i % 7],
                name=f"n{i % 13}",
                occurred_at=now - timedelta(hours=i),
                received_at=now,
            )
            for i in range(2000)
        ]
    )
    queryset = query(Signal.objects.filter(name="n1").first(), now - timedelta(days=3))
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute("ANALYZE engagement_signal")
    plan = queryset.explain()
    assert index in plan, plan
