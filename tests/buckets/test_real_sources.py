"""The lifecycle leaf against the real lifecycle table (the case table uses stand-ins of its shape)."""

import pytest
from django.utils import timezone

from buckets.criteria import validation
from buckets.criteria.compiler import matching_users
from engagement.models import LifecycleState
from tests.factories import EndUserFactory

pytestmark = pytest.mark.django_db


def test_the_lifecycle_leaf_reads_the_real_lifecycle_states():
    now = timezone.now()
    dormant, active, stateless = EndUserFactory(), EndUserFactory(), EndUserFactory()
    for user, state in ((dormant, "dormant"), (active, "active")):
        LifecycleState.objects.create(user=user, state=state, last_activity_at=now, changed_at=now)
    criteria = {"lifecycle": ["dormant", "goodbye_sent"]}
    assert not validation.validate_criteria(criteria)
    assert list(matching_users(criteria, now).values_list("pk", flat=True)) == [dormant.pk]
    assert stateless.pk not in matching_users({"lifecycle": "active"}, now).values_list("pk", flat=True)


def test_the_real_lifecycle_states_are_the_only_ones_criteria_may_name():
    assert validation.validate_criteria({"lifecycle": "sleeping"})
