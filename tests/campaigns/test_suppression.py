"""PULSE_OUTBOX_SUPPRESSED agrees with the send gate's preference step, case by case."""

import pytest
from django.db.models import OuterRef
from django.utils import timezone

from campaigns.models import Preference
from campaigns.preferences import block_reason
from campaigns.suppression import suppressed
from engagement.models import EndUser
from tests.factories import EndUserFactory

pytestmark = pytest.mark.django_db

CASES = [
    None,
    {"unsubscribed_all": True},
    {"categories": {"lifecycle": False}},
    {"categories": {"lifecycle": True}},
    {"categories": {"marketing": False}},
    {"unsubscribed_all": True, "categories": {"lifecycle": True}},
    {"categories": {}},
]


@pytest.mark.parametrize("category", ["lifecycle", "marketing", "transactional", "system"])
def test_the_sql_condition_drops_exactly_whom_the_gate_drops(category):
    expected = {}
    for case in CASES:
        user = EndUserFactory()
        pref = Preference.objects.create(user=user, updated_at=timezone.now(), **case) if case else None
        expected[user.pk] = block_reason(pref, category) is not None
    found = set(EndUser.objects.filter(suppressed(category, OuterRef("pk"))).values_list("pk", flat=True))
    assert found == {pk for pk, dropped in expected.items() if dropped}
