"""record_system_signal_set writes what record_system_signals writes, for many users at once."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import transaction

from engagement.ingest import SignalSet, SystemSignal, record_system_signal_set, record_system_signals
from engagement.models import Signal, SignalQueue
from engagement.wake import wake_drain
from tests.factories import EndUserFactory, TenantFactory
from tests.rows import columns_but_id

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 5, 4, 6, 0, tzinfo=UTC)
PROPS = {"from": "active", "to": "goodbye_sent", "trigger": "inactivity_14d", "note": "Zoë \"q\" \\"}


def stored() -> tuple[list[dict], int]:
    signals = Signal.objects.order_by("user_id")
    queued = SignalQueue.objects.filter(signal__in=signals).count()
    return columns_but_id(signals), queued


def both_paths(user_ids, **fields) -> tuple:
    results = []
    writers = (
        lambda: record_system_signals([SystemSignal(uid, "$lifecycle.changed", "job:daily_engagement",
                                                    **fields) for uid in user_ids], now=NOW),
        lambda: record_system_signal_set(SignalSet(user_ids, "$lifecycle.changed", "job:daily_engagement",
                                                   **fields), now=NOW),
    )
    for write in writers:
        with transaction.atomic():
            write()
            results.append(stored())
            transaction.set_rollback(True)
    return tuple(results)


def users_with_and_without_a_primary_tenant() -> list[int]:
    tenant = TenantFactory()
    with_tenant = [EndUserFactory(primary_tenant=tenant).pk for _ in range(2)]
    return [*with_tenant, EndUserFactory(primary_tenant=None).pk]


def test_the_set_stores_every_column_the_rows_store_and_queues_each_signal():
    users = users_with_and_without_a_primary_tenant()
    by_rows, by_set = both_paths(users, properties=PROPS, occurred_at=NOW - timedelta(minutes=3))
    assert by_rows == by_set and by_set[1] == 3
    assert [row["tenant_id"] is None for row in by_set[0]] == [False, False, True]


def test_history_signals_of_a_set_are_not_realtime_as_in_the_rows():
    users = users_with_and_without_a_primary_tenant()
    by_rows, by_set = both_paths(users, properties=PROPS, realtime=False, feature="lifecycle")
    assert by_rows == by_set and {row["realtime"] for row in by_set[0]} == {False}


def test_an_empty_set_records_nothing_and_asks_nothing(django_assert_num_queries):
    with django_assert_num_queries(0):
        assert record_system_signal_set(SignalSet([], "$lifecycle.changed", "job:x"), now=NOW) == []


def test_a_set_needs_an_actor_and_integer_user_ids():
    user = EndUserFactory().pk
    with pytest.raises(ValueError, match="actor"):
        record_system_signal_set(SignalSet([user], "$lifecycle.changed", ""), now=NOW)
    with pytest.raises(TypeError):
        record_system_signal_set(SignalSet([str(user)], "$lifecycle.changed", "job:x"), now=NOW)
    assert not Signal.objects.exists()


def test_a_set_wakes_the_drain_after_commit_and_costs_a_fixed_number_of_queries(
    django_capture_on_commit_callbacks, django_assert_max_num_queries
):
    for size in (2, 100):
        users = [u.pk for u in EndUserFactory.create_batch(size)]
        with django_capture_on_commit_callbacks() as callbacks, django_assert_max_num_queries(2):
            ids = record_system_signal_set(SignalSet(users, "$lifecycle.changed", "job:x"), now=NOW)
        assert len(ids) == size and wake_drain in callbacks  # insert, queue rows (one on PG)
