"""seed_demo defines the demo buckets and the demo drain fills them."""

from datetime import UTC, datetime

import pytest
from django.core.management import call_command

from buckets.demo import seed_buckets
from buckets.models import Bucket, BucketMembership

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 3, 4, 15, 30, tzinfo=UTC)


def test_the_demo_defines_telling_buckets_with_reactions_once(now):
    assert seed_buckets(seed=1, days=7, now=now)["buckets"] == 4
    assert seed_buckets(seed=1, days=7, now=now)["buckets"] == 0
    assert set(Bucket.objects.values_list("slug", flat=True)) == {
        "power-users", "new-this-week", "pro-in-northwind", "vip"}
    assert all(bucket.reactions.exists() for bucket in Bucket.objects.all())


def test_the_demo_drain_evaluates_the_demo_buckets():
    call_command("seed_demo", "--users", "20", "--days", "10", "--seed", "5", "--now", NOW.isoformat(),
                 verbosity=0)
    assert BucketMembership.objects.filter(bucket__slug="new-this-week", status="active").exists()
    assert BucketMembership.objects.filter(bucket__slug="power-users").exists()
