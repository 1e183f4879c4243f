"""The signal tally stays exact through every writer of the log, on both databases: the
triggers of migration 0014 are the only thing that maintains it."""

import importlib
import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engagement import signal_tally
from engagement.bulk import insert_select
from engagement.erase import erase_user
from engagement.identity import merge_users
from engagement.ingest import SystemSignal, record_system_signals
from engagement.models import EndUser, Signal, SignalTally
from engagement.pipeline import _mark_failed
from tests.concurrency import in_threads
from tests.conftest import postgres_only
from tests.factories import EndUserFactory

pytestmark = pytest.mark.django_db


def tally() -> dict:
    return {(row.user_id, row.name): (row.first_at, row.last_at, row.total)
            for row in SignalTally.objects.all()}


def add(user, name, at, **fields):
    return Signal.objects.create(user=user, name=name, occurred_at=at, received_at=at, **fields)


def assert_exact():
    assert signal_tally.differences() == 0, tally()


def test_a_single_insert_starts_its_pair_with_a_total_of_one(now):
    user = EndUserFactory()
    add(user, "opened", now)
    assert tally() == {(user.pk, "opened"): (now, now, 1)}


def test_inserts_widen_first_and_last_and_add_to_the_total(now):
    user = EndUserFactory()
    for at in (now, now - timedelta(days=3), now + timedelta(hours=1), now - timedelta(days=1)):
        add(user, "opened", at)
    assert tally() == {(user.pk, "opened"): (now - timedelta(days=3), now + timedelta(hours=1), 4)}


def test_a_bulk_insert_tallies_every_pair_of_the_statement(now):
    users = EndUserFactory.create_batch(3)
    Signal.objects.bulk_create([
        Signal(user=users[i % 3], name=f"n{i % 2}", occurred_at=now - timedelta(minutes=i), received_at=now)
        for i in range(60)])
    assert len(tally()) == 6
    assert sum(total for _, _, total in tally().values()) == 60
    assert_exact()


def test_an_insert_select_writer_keeps_the_tally_exact(now):
    users = EndUserFactory.create_batch(4)
    add(users[0], "tip.served", now - timedelta(days=1))
    insert_select(Signal, {"user_id": [u.pk for u in users] * 2},
                  constants={"name": "tip.served", "occurred_at": now, "received_at": now, "properties": {},
                             "context": {}, "source": "system", "realtime": True, "error": ""})
    assert tally()[(users[0].pk, "tip.served")] == (now - timedelta(days=1), now, 3)
    assert_exact()


def test_system_signals_are_tallied_in_the_writers_transaction(now):
    user = EndUserFactory()
    with transaction.atomic():
        record_system_signals([SystemSignal(user_id=user.pk, name="$bucket.entered", actor="job:test",
                                            occurred_at=now)], now=now)
        assert tally() == {(user.pk, "$bucket.entered"): (now, now, 1)}
        transaction.set_rollback(True)
    assert tally() == {}


def test_a_merge_moves_the_losers_pairs_onto_the_survivor(now):
    survivor, loser = EndUserFactory(), EndUserFactory(external_id=None, anonymous_id="anon")
    add(survivor, "opened", now - timedelta(days=2))
    add(loser, "opened", now - timedelta(days=5))
    add(loser, "opened", now)
    add(loser, "paid", now - timedelta(days=1))
    merge_users([survivor, loser], now=now)
    assert tally() == {(survivor.pk, "opened"): (now - timedelta(days=5), now, 3),
                       (survivor.pk, "paid"): (now - timedelta(days=1), now - timedelta(days=1), 1)}
    assert_exact()


def test_deleting_a_pairs_first_or_last_signal_narrows_it(now):
    user = EndUserFactory()
    first, middle, last = (add(user, "opened", now - timedelta(days=d)) for d in (9, 5, 1))
    first.delete()
    assert tally()[(user.pk, "opened")] == (middle.occurred_at, last.occurred_at, 2)
    last.delete()
    assert tally()[(user.pk, "opened")] == (middle.occurred_at, middle.occurred_at, 1)


def test_deleting_a_pairs_last_signal_removes_its_row(now):
    user = EndUserFactory()
    add(user, "opened", now)
    add(user, "paid", now)
    Signal.objects.filter(name="opened").delete()
    assert tally() == {(user.pk, "paid"): (now, now, 1)}


def test_deleting_a_user_cascades_to_their_signals_and_tally(now):
    gone, kept = EndUserFactory(), EndUserFactory()
    for user in (gone, kept):
        add(user, "opened", now)
    gone.delete()
    assert tally() == {(kept.pk, "opened"): (now, now, 1)}
    assert_exact()


def test_an_erasure_scrubs_payloads_and_leaves_the_tally_as_it_was(now):
    user = EndUserFactory()
    add(user, "paid", now - timedelta(days=1), properties={"amount": 5})
    add(user, "paid", now)
    before = tally()
    erase_user(user, erased_by="staff:test", now=now)
    assert not Signal.objects.filter(properties__has_key="amount").exists()
    assert tally() == before


def test_marking_a_signal_failed_leaves_the_tally_as_it_was(now):
    user = EndUserFactory()
    signal = add(user, "opened", now)
    before = tally()
    _mark_failed(signal, ValueError("boom"), now)
    assert Signal.objects.get(pk=signal.pk).failed_at == now
    assert tally() == before


def test_moving_a_signal_in_time_moves_first_and_last(now):
    user = EndUserFactory()
    signal = add(user, "opened", now)
    add(user, "opened", now - timedelta(days=1))
    Signal.objects.filter(pk=signal.pk).update(occurred_at=now - timedelta(days=3))
    assert tally() == {(user.pk, "opened"): (now - timedelta(days=3), now - timedelta(days=1), 2)}


def test_renaming_a_signal_moves_it_to_another_pair(now):
    user = EndUserFactory()
    signal = add(user, "opened", now)
    Signal.objects.filter(pk=signal.pk).update(name="launched")
    assert tally() == {(user.pk, "launched"): (now, now, 1)}


def test_refill_rebuilds_a_tally_that_a_trigger_less_load_left_empty(now):
    user = EndUserFactory()
    add(user, "opened", now)
    SignalTally.objects.all().delete()
    assert signal_tally.differences() == 1
    assert signal_tally.refill() == 1
    assert_exact()


def test_differences_finds_a_wrong_total_and_a_row_too_many(now):
    user = EndUserFactory()
    add(user, "opened", now)
    SignalTally.objects.filter(user=user).update(total=7)
    SignalTally.objects.create(user=user, name="ghost", first_at=now, last_at=now, total=1)
    assert signal_tally.differences() == 2
    assert signal_tally.differences(user_modulo=user.pk) == 2
    assert signal_tally.differences(user_modulo=user.pk + 1) == 0


class Editor:
    """What the migration's functions use of a schema editor, inside the test's transaction
    (SQLite's own editor refuses to open inside one)."""

    connection = connection

    def execute(self, sql):
        with connection.cursor() as cursor:
            cursor.execute(sql)


def test_the_migration_reverses_by_dropping_its_triggers(now):
    migration = importlib.import_module("engagement.migrations.0014_signal_tally")
    user = EndUserFactory()
    with transaction.atomic():
        migration.drop_triggers(None, Editor())
        add(user, "opened", now)
        assert tally() == {}
        migration.create_triggers(None, Editor())
        add(user, "opened", now)
        assert tally() == {(user.pk, "opened"): (now, now, 1)}
        transaction.set_rollback(True)


NAMES = ["a", "b"]
OPERATIONS = st.lists(st.one_of(
    st.tuples(st.just("insert"), st.integers(0, 2), st.sampled_from(NAMES), st.integers(-5, 5),
              st.integers(1, 3)),
    st.tuples(st.just("move"), st.integers(0, 2), st.integers(0, 2)),
    st.tuples(st.just("rename"), st.integers(0, 2), st.sampled_from(NAMES)),
    st.tuples(st.just("retime"), st.integers(0, 2), st.integers(-5, 5)),
    st.tuples(st.just("delete"), st.integers(0, 2), st.sampled_from(NAMES)),
    st.tuples(st.just("delete_one"), st.integers(0, 30)),
), max_size=12)


def _apply(operation, users, now):
    kind, *args = operation
    day = timedelta(days=1)
    if kind == "insert":
        user, name, offset, count = args
        Signal.objects.bulk_create([Signal(user=users[user], name=name, occurred_at=now + offset * day,
                                           received_at=now) for _ in range(count)])
    elif kind == "move":
        Signal.objects.filter(user=users[args[0]]).update(user=users[args[1]])
    elif kind == "rename":
        Signal.objects.filter(user=users[args[0]]).update(name=args[1])
    elif kind == "retime":
        Signal.objects.filter(user=users[args[0]]).update(occurred_at=now + args[1] * day)
    elif kind == "delete":
        Signal.objects.filter(user=users[args[0]], name=args[1]).delete()
    else:
        ids = list(Signal.objects.order_by("pk").values_list("pk", flat=True))
        if ids:
            Signal.objects.filter(pk=ids[args[0] % len(ids)]).delete()


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(operations=OPERATIONS)
def test_random_inserts_moves_and_deletes_leave_the_tally_equal_to_a_recount(operations, now):
    with transaction.atomic():
        users = [EndUser.objects.create(external_id=f"u{i}", first_seen_at=now) for i in range(3)]
        for operation in operations:
            _apply(operation, users, now)
        assert_exact()
        transaction.set_rollback(True)


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_inserts_and_deletes_of_one_pair_keep_it_exact(now):
    user = EndUserFactory()
    doomed = [add(user, "opened", now - timedelta(days=d)).pk for d in range(1, 41)]
    barrier = threading.Barrier(4)

    def work(index):
        barrier.wait(timeout=10)
        for step in range(10):
            with transaction.atomic():
                if index % 2:
                    Signal.objects.filter(pk=doomed[(index // 2) * 20 + step * 2]).delete()
                else:
                    add(user, "opened", now + timedelta(minutes=index * 100 + step))

    assert in_threads(work, 4, timeout=120) == []
    assert SignalTally.objects.get(user=user).total == 40 - 20 + 20
    assert_exact()
