"""The bucket handler keeps the drain's contract with buckets defined, and races end in one row."""

import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from buckets import candidates
from buckets.candidates import BucketSpec, candidate_index, forget_index
from buckets.evaluation import evaluate
from buckets.memberships import Cause
from buckets.models import Bucket, BucketMembership, BucketTransition
from buckets.realtime import evaluate_buckets
from engagement.models import Signal, SignalQueue
from engagement.pipeline import HandlerContext, claim_batch
from tests.concurrency import in_threads
from tests.conftest import postgres_only
from tests.engagement.test_handler_contracts import snapshot
from tests.factories import EndUserFactory

from .helpers import PRO, define, in_app_template, signal

pytestmark = pytest.mark.django_db


def _buckets():
    in_app_template()
    define(reactions=[{"id": "hi", "on": "enter", "action": {"message": "bucket.welcome"}}])
    define("pros", PRO)
    define("pro-openers", {"all": [{"in_bucket": "pros"}, {"event": "app_opened", "check": "exists"}]})


def _batch(size, now):
    SignalQueue.objects.all().delete()  # the $bucket.* signals a previous run queued are not this batch's
    users = [EndUserFactory(properties={"plan": "pro" if i % 2 else "free"}) for i in range(size)]
    for i, user in enumerate(users):
        signal(user, at=now - timedelta(seconds=i))
        signal(user, "$identify", source="system", properties={"properties": {"plan": "x"}})
    return claim_batch(size * 2)


def _run(batch, context) -> int:
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        evaluate_buckets(batch, context)
    return len(queries.captured_queries)


def test_the_bucket_handler_queries_the_same_for_5_and_50_users(now):
    _buckets()
    candidate_index()
    counts = {size: _run(_batch(size, now), HandlerContext(now=now)) for size in (5, 50)}
    assert counts[5] == counts[50] and BucketMembership.objects.count() > 50


@pytest.mark.parametrize("replay", [False, True])
def test_a_second_run_of_the_bucket_handler_changes_nothing(now, replay):
    _buckets()
    batch, context = _batch(10, now), HandlerContext(now=now, replay=replay)
    _run(batch, context)
    first = snapshot()
    _run(batch, context)
    assert snapshot() == first


def test_workers_refresh_their_index_when_the_version_moves_and_not_otherwise(now, django_assert_num_queries):
    forget_index()
    define()
    index = candidate_index()
    with django_assert_num_queries(1):  # the version read only
        assert candidate_index() is index
    define("pros", PRO)
    assert set(candidate_index().buckets) == set(Bucket.objects.values_list("pk", flat=True))


def test_the_index_names_buckets_by_event_property_tenant_and_the_buckets_they_name():
    index = candidates.CandidateIndex(version=1)
    index.add(BucketSpec(1, "a", "A", "dynamic", {"all": [{"event": "e", "check": "exists"},
                                                          {"property": "address.city", "op": "exists"},
                                                          {"tenant": "acme"}]}, "", "always", None))
    index.add(BucketSpec(2, "b", "B", "dynamic", {"in_bucket": "a"}, "", "always", None))

    def touched(name, properties=None, tenant_id=None, source="api"):
        sig = Signal(name=name, properties=properties or {}, tenant_id=tenant_id, source=source)
        return candidates.touched_buckets(sig, index)

    assert touched("e") == {1} and touched("other") == set()
    assert touched("$identify", {"properties": {"address": {}}}, source="system") == {1}
    assert touched("$identify", {"properties": {"plan": "x"}}, source="system") == {1}  # tenant links
    assert touched("other", tenant_id=7) == {1}
    assert touched("$bucket.entered", {"bucket": "a"}, source="system") == {2}
    assert touched("$alias", source="system") == {1, 2}


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_two_evaluations_racing_create_one_active_row_and_one_transition(now):
    bucket, user = define(), EndUserFactory()
    signal(user)
    spec = BucketSpec.of(bucket)
    barrier = threading.Barrier(2)

    def evaluate_in_a_thread(_):
        with transaction.atomic():
            BucketMembership.objects.filter(bucket=bucket).exists()  # the snapshot starts empty
            barrier.wait(timeout=10)
            evaluate(spec, [user.pk], cause=Cause("signal", "test"), now=now)

    assert in_threads(evaluate_in_a_thread) == []
    assert BucketMembership.objects.filter(status="active").count() == 1
    assert BucketTransition.objects.count() == 1
    assert Signal.objects.filter(name="$bucket.entered").count() == 1


def test_a_bucket_evaluated_again_later_moves_its_window_with_the_clock(now):
    bucket = define("recent", {"event": "app_opened", "check": "exists", "within": "1h"})
    user = EndUserFactory()
    signal(user, at=now - timedelta(minutes=30))
    spec, cause = BucketSpec.of(bucket), Cause("signal", "test")
    assert [t["kind"] for t in evaluate(spec, [user.pk], cause=cause, now=now).transitions] == ["entered"]
    later = evaluate(spec, [user.pk], cause=cause, now=now + timedelta(minutes=40))  # the same statement
    assert [t["kind"] for t in later.transitions] == ["left"]


def test_a_join_racing_a_join_and_leave_of_the_same_user_retries_with_the_next_entry_count(now, monkeypatch):
    from buckets import memberships

    bucket, user = define(), EndUserFactory()
    signal(user)
    for count in (1, 2):
        BucketMembership.objects.create(bucket=bucket, user=user, status="left", entered_at=now, left_at=now,
                                        leave_reason="criteria", entry_count=count, source="signal",
                                        last_evaluated_at=now)
    real, reads = memberships._prior_stays, []

    def read_before_the_other_evaluation(pairs):
        reads.append(pairs)
        return {pair: (1, now) for pair in pairs} if len(reads) == 1 else real(pairs)

    monkeypatch.setattr(memberships, "_prior_stays", read_before_the_other_evaluation)
    outcome = evaluate(BucketSpec.of(bucket), [user.pk], cause=Cause("signal", "test"), now=now)
    assert [(t["kind"], t["entry_count"]) for t in outcome.transitions] == [("entered", 3)]
    assert len(reads) == 2
    assert BucketMembership.objects.get(status="active").entry_count == 3

