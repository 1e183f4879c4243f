"""A bucket on a profile feature is re-evaluated when a signal that invalidates the feature
arrives (its declaration's `invalidated_by`), with the real profiles app."""

from datetime import timedelta

import pytest

from buckets.candidates import build_index, profile_invalidators, touched_buckets
from buckets.models import BucketMembership
from tests.factories import EndUserFactory

from .helpers import define, drain, signal

pytestmark = pytest.mark.django_db

TIPS = {"profile": "tip_volume_30d", "op": "gte", "value": 2}


def test_profile_leaves_are_candidates_for_the_signals_that_invalidate_their_feature(now):
    bucket = define("tipped", TIPS)
    index = build_index(version=1)
    user = EndUserFactory()
    assert bucket.pk in touched_buckets(signal(user, "tip.served"), index)
    assert bucket.pk not in touched_buckets(signal(user, "tip.feedback"), index)


def test_a_feature_invalidated_by_any_signal_makes_every_signal_a_candidate(now):
    assert profile_invalidators("signals_30d") == ("*",)
    bucket = define("busy", {"profile": "signals_30d", "op": "gte", "value": 3})
    assert bucket.pk in touched_buckets(signal(EndUserFactory(), "anything.at_all"), build_index(version=1))


def test_users_join_a_profile_bucket_as_their_signals_change_the_feature(now):
    define("tipped", TIPS)
    user = EndUserFactory()
    signal(user, "tip.served", at=now - timedelta(minutes=2))
    drain(now)
    assert not BucketMembership.objects.filter(user=user).exists()
    signal(user, "tip.served", at=now - timedelta(minutes=1))
    drain(now)
    assert BucketMembership.objects.get(user=user).status == "active"
