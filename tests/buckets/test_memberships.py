"""Memberships from real-time evaluation: join, stay, leave and re-entry, through the real drain."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from buckets.models import BucketMembership
from engagement.bulk import insert_returning
from engagement.models import EndUser
from tests.factories import EndUserFactory

from .helpers import PRO, bucket_signals, define, drain, signal, stays, transitions

pytestmark = pytest.mark.django_db


def test_a_matching_signal_joins_the_bucket_with_a_transition_and_a_bucket_signal(now):
    bucket, user = define(), EndUserFactory()
    signal(user)
    drain(now)
    membership = BucketMembership.objects.get(bucket=bucket, user=user)
    assert (membership.status, membership.entry_count, membership.source) == ("active", 1, "signal")
    assert membership.entered_at == now and membership.last_evaluated_at == now
    assert transitions(bucket) == [("entered", 1)]
    (entered,) = bucket_signals()
    assert entered.name == "$bucket.entered" and entered.source == "system"
    assert entered.properties == {"bucket": "openers", "entry_count": 1, "source": "signal"}


def test_a_member_who_still_matches_stays_without_a_second_transition(now):
    bucket, user = define(), EndUserFactory()
    signal(user)
    drain(now)
    signal(user)
    drain(now + timedelta(minutes=1))
    assert stays(bucket, user) == [("active", 1)]
    assert transitions(bucket) == [("entered", 1)]
    assert BucketMembership.objects.get().last_evaluated_at == now + timedelta(minutes=1)


def test_a_member_who_no_longer_matches_leaves_and_re_enters_with_a_higher_entry_count(now):
    bucket = define("pros", PRO)
    user = EndUserFactory(properties={"plan": "pro"})
    signal(user, "$identify", source="system", properties={"properties": {"plan": "pro"}})
    drain(now)
    EndUser.objects.filter(pk=user.pk).update(properties={"plan": "free"})
    signal(user, "$identify", source="system", properties={"properties": {"plan": "free"}})
    drain(now + timedelta(minutes=1))
    membership = BucketMembership.objects.get(bucket=bucket, user=user)
    assert (membership.status, membership.leave_reason) == ("left", "criteria")
    assert membership.left_at == now + timedelta(minutes=1)
    EndUser.objects.filter(pk=user.pk).update(properties={"plan": "pro"})
    signal(user, "$identify", source="system", properties={"properties": {"plan": "pro"}})
    drain(now + timedelta(minutes=2))
    assert stays(bucket, user) == [("left", 1), ("active", 2)]
    assert transitions(bucket) == [("entered", 1), ("left", 1), ("entered", 2)]
    assert [s.name for s in bucket_signals()] == ["$bucket.entered", "$bucket.left", "$bucket.entered"]
    assert bucket_signals()[1].properties["reason"] == "criteria"


def test_the_payload_never_stands_in_for_stored_properties(now):
    """The signal says plan=pro; the stored user says free: the stored value decides."""
    bucket = define("pros", PRO)
    user = EndUserFactory(properties={"plan": "free"})
    signal(user, "$identify", source="system", properties={"properties": {"plan": "pro"}})
    signal(user, "app_opened", properties={"plan": "pro"})
    drain(now)
    assert stays(bucket, user) == []
    stored = EndUserFactory(properties={"plan": "pro"})
    signal(stored, "$identify", source="system", properties={"properties": {"plan": "free"}})
    drain(now)
    assert stays(bucket, stored) == [("active", 1)]


@pytest.mark.parametrize("identifiers", [
    pytest.param({"external_id": None, "email": None, "anonymous_id": "anon-1"}, id="anonymous only"),
    pytest.param({"external_id": None, "email": "only@example.com"}, id="email only"),
])
def test_users_without_an_external_id_are_members_like_any_other(now, identifiers, api):
    bucket, user = define(), EndUserFactory(**identifiers)
    signal(user)
    drain(now)
    assert stays(bucket, user) == [("active", 1)]
    items = api.get_json("/api/v1/buckets/openers/members").json()["items"]
    anonymous = identifiers.get("anonymous_id")
    expected = f"anon:{anonymous}" if anonymous else "email:only@example.com"
    assert [item["user"] for item in items] == [expected]


def test_signals_that_touch_no_bucket_leave_memberships_alone(now, django_assert_max_num_queries):
    define()
    signal(EndUserFactory(), "page_viewed")
    drain(now)
    assert not BucketMembership.objects.exists()


def test_only_one_active_row_per_bucket_and_user_is_allowed_on_both_databases(now):
    bucket, user = define(), EndUserFactory()
    row = {"bucket": bucket, "user": user, "status": "active", "entered_at": now, "entry_count": 1,
           "source": "signal", "last_evaluated_at": now}
    BucketMembership.objects.create(**row)
    with pytest.raises(IntegrityError), transaction.atomic():
        BucketMembership.objects.create(**{**row, "entry_count": 2})
    BucketMembership.objects.create(**{**row, "status": "left", "entry_count": 2})


def test_insert_returning_skips_a_row_the_partial_unique_index_holds_on_both_databases(now):
    bucket, user, other = define(), EndUserFactory(), EndUserFactory()

    def row(uid, n):
        return {"bucket_id": bucket.pk, "user_id": uid, "status": "active", "entered_at": now,
                "left_at": None, "leave_reason": "", "entry_count": n, "source": "signal",
                "last_evaluated_at": now, "criteria_fingerprint": ""}

    first = insert_returning(BucketMembership, [row(user.pk, 1)], conflict_fields=["bucket", "user"],
                             conflict_where={"status": "active"}, returning=("id", "user"))
    again = insert_returning(BucketMembership, [row(user.pk, 2), row(other.pk, 1)],
                             conflict_fields=["bucket", "user"], conflict_where={"status": "active"},
                             returning=("id", "user"))
    assert [r["user_id"] for r in first] == [user.pk]
    assert [r["user_id"] for r in again] == [other.pk]
    assert BucketMembership.objects.count() == 2


@pytest.mark.parametrize("hostile", ["active'; DROP TABLE x; --", {"a": 1}, 1.5])
def test_an_index_predicate_takes_only_plain_literals(hostile, now):
    with pytest.raises(ValueError, match="plain literals"):
        insert_returning(BucketMembership, [{"status": "active"}], conflict_fields=["bucket", "user"],
                         conflict_where={"status": hostile})


def test_a_bucket_named_by_in_bucket_joins_first_so_the_chain_completes_in_one_batch(now):
    define("pros", PRO)
    define("pro-openers", {"all": [{"in_bucket": "pros"}, {"event": "app_opened", "check": "exists"}]})
    user = EndUserFactory(properties={"plan": "pro"})
    signal(user, "$identify", source="system", properties={"properties": {"plan": "pro"}})
    signal(user)
    drain(now)
    assert set(BucketMembership.objects.filter(user=user, status="active")
               .values_list("bucket__slug", flat=True)) == {"pros", "pro-openers"}


def test_a_bucket_signal_re_evaluates_the_buckets_that_name_it(now, api):
    api.post_json("/api/v1/buckets", {"slug": "vip", "name": "VIP", "kind": "manual"})
    define("vip-openers", {"all": [{"in_bucket": "vip"}, {"event": "app_opened", "check": "exists"}]})
    user = EndUserFactory(external_id="ann")
    signal(user)
    drain(now)
    assert not BucketMembership.objects.filter(bucket__slug="vip-openers").exists()
    assert api.post_json("/api/v1/buckets/vip/members", {"add": ["ann"]}).status_code == 200
    drain(now + timedelta(seconds=1))
    assert BucketMembership.objects.filter(bucket__slug="vip-openers", user=user, status="active").exists()


def test_a_bucket_whose_criteria_cannot_run_records_its_error_and_the_batch_goes_on(now, settings):
    # A deployment whose lifecycle source has gone: the stored criteria can no longer compile.
    settings.PULSE_BUCKET_SOURCES = {**settings.PULSE_BUCKET_SOURCES, "lifecycle": "nowhere.Lifecycle"}
    broken = define("broken")
    define("fine", {"event": "app_opened", "check": "exists"})
    type(broken).objects.filter(pk=broken.pk).update(
        criteria={"all": [{"event": "app_opened", "check": "exists"}, {"lifecycle": "active"}]})
    from buckets.index_version import bump_version
    bump_version()
    user = EndUserFactory()
    signal(user)
    result = drain(now)
    assert result.failed == 0
    broken.refresh_from_db()
    assert "lifecycle" in broken.last_error
    assert stays(type(broken).objects.get(slug="fine"), user) == [("active", 1)]


def test_changing_the_criteria_re_evaluates_the_members_at_the_next_evaluation(now, api):
    bucket = define("pros", PRO)
    users = [EndUserFactory(properties={"plan": "pro"}) for _ in range(3)]
    for user in users:
        signal(user, "$identify", source="system", properties={"properties": {"plan": "pro"}})
    drain(now)
    assert BucketMembership.objects.filter(status="active").count() == 3
    from buckets.definitions import replace_bucket

    replace_bucket(bucket, {"name": "Pros", "criteria": {"property": "plan", "op": "eq", "value": "max"}},
                   actor="test", now=now)
    signal(EndUserFactory(), "app_opened")  # any batch is the next evaluation
    drain(now + timedelta(minutes=1))
    assert not BucketMembership.objects.filter(status="active").exists()
    assert set(BucketMembership.objects.values_list("leave_reason", flat=True)) == {"criteria"}
    bucket.refresh_from_db()
    assert bucket.reevaluate_members is False


def test_memberships_are_evaluated_at_the_drains_now_not_the_clock(now):
    bucket, user = define(), EndUserFactory()
    signal(user, at=now - timedelta(days=8))
    drain(now - timedelta(days=7, hours=23))
    assert stays(bucket, user) == [("active", 1)]
    assert BucketMembership.objects.get().entered_at == now - timedelta(days=7, hours=23)
    assert timezone.is_aware(BucketMembership.objects.get().entered_at)
