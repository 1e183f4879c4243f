"""Erase, merge and disable: what happens to memberships when users or buckets go."""

from datetime import timedelta

import pytest

from buckets.definitions import disable_bucket
from buckets.merge_handlers import merge_memberships
from buckets.models import BucketMembership, BucketTransition
from engagement.erase import erase_user
from engagement.identity import merge_users
from tests.factories import EndUserFactory

from .helpers import GOODBYE, WELCOME, bucket_messages, bucket_signals, define, drain, in_app_template, signal

pytestmark = pytest.mark.django_db


def _member(bucket, user, *, entered, count=1, status="active", left=None, reason=""):
    membership = BucketMembership.objects.create(
        bucket=bucket, user=user, status=status, entered_at=entered, left_at=left, leave_reason=reason,
        entry_count=count, source="signal", last_evaluated_at=entered)
    for kind in ("entered", "left") if status == "left" else ("entered",):
        BucketTransition.objects.create(
            bucket=bucket, user=user, membership=membership, kind=kind, entry_count=count, source="signal",
            occurred_at=entered, realtime=True, fires=False, reason=reason if kind == "left" else "")
    return membership


def test_an_erased_member_leaves_every_bucket_with_reason_erased_and_nothing_fires(now):
    in_app_template()
    buckets = [define("openers", reactions=[WELCOME, GOODBYE]), define("others")]
    user = EndUserFactory()
    signal(user)
    drain(now)
    erasure = erase_user(user, erased_by="test", now=now + timedelta(minutes=1))
    assert erasure.counts["bucket_memberships_ended"] == 2
    for bucket in buckets:
        membership = BucketMembership.objects.get(bucket=bucket)
        assert (membership.status, membership.leave_reason) == ("left", "erased")
    left = BucketTransition.objects.filter(kind="left")
    assert left.count() == 2 and not left.filter(fires=True).exists()
    assert [s.realtime for s in bucket_signals("$bucket.left")] == [False, False]
    assert len(bucket_messages()) == 1  # the welcome before; nothing for an erased user
    assert erase_user(user, erased_by="test", now=now).counts["bucket_memberships_ended"] == 0


def test_a_merge_keeps_one_active_row_per_bucket_the_earlier_entry_and_renumbers_the_history(now):
    bucket = define()
    survivor, loser = EndUserFactory(), EndUserFactory(external_id=None, anonymous_id="a-1")
    _member(bucket, survivor, entered=now - timedelta(days=1))
    _member(bucket, loser, entered=now - timedelta(days=9), status="left", left=now - timedelta(days=8),
            reason="criteria")
    _member(bucket, loser, entered=now - timedelta(days=5), count=2)
    merge_memberships(survivor, [loser], now)
    rows = list(BucketMembership.objects.filter(bucket=bucket).order_by("entry_count")
                .values_list("user_id", "entry_count", "status", "leave_reason"))
    assert rows == [(survivor.pk, 1, "left", "criteria"), (survivor.pk, 2, "active", ""),
                    (survivor.pk, 3, "left", "merged")]
    active = BucketMembership.objects.get(status="active")
    assert active.entered_at == now - timedelta(days=5)
    assert sorted(BucketTransition.objects.values_list("user_id", "kind", "entry_count")) == sorted([
        (survivor.pk, "entered", 1), (survivor.pk, "left", 1), (survivor.pk, "entered", 2),
        (survivor.pk, "entered", 3)])
    merge_memberships(survivor, [loser], now)  # run again: nothing left to move
    assert BucketMembership.objects.filter(user=survivor).count() == 3


def test_a_merge_through_identify_moves_a_losers_only_membership(now):
    bucket = define()
    survivor, loser = EndUserFactory(), EndUserFactory(external_id=None, anonymous_id="a-2")
    _member(bucket, loser, entered=now - timedelta(days=2))
    merge_users([survivor, loser], now=now)
    assert list(BucketMembership.objects.values_list("user_id", "status", "entry_count")) == [
        (survivor.pk, "active", 1)]


def test_disabling_a_bucket_removes_its_members_with_signals_and_without_reactions(now):
    in_app_template()
    bucket = define(reactions=[GOODBYE])
    users = [EndUserFactory() for _ in range(3)]
    for user in users:
        signal(user)
    drain(now)
    disable_bucket(bucket, actor="test", now=now + timedelta(minutes=1))
    assert set(BucketMembership.objects.values_list("status", "leave_reason")) == {("left", "disabled")}
    assert BucketTransition.objects.filter(kind="left", reason="disabled", fires=False).count() == 3
    assert len(bucket_signals("$bucket.left")) == 3
    assert not bucket_signals("openers.lost")
    signal(users[0])
    drain(now + timedelta(minutes=2))  # a disabled bucket is not evaluated
    assert not BucketMembership.objects.filter(status="active").exists()
    disable_bucket(bucket, actor="test", now=now)  # again: nothing more
    assert BucketTransition.objects.count() == 6
