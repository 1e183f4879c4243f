"""Staff see each user's lifecycle on the user page and an overview of every state."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from engagement.loops.lifecycle_overview import chart, users_per_state
from engagement.models import LifecycleTransition
from tests.engagement.lifecycle_helpers import S, goodbye_sent, user_in

pytestmark = pytest.mark.django_db


def transitions(user, days_ago, count, to="dormant"):
    now = timezone.now()
    for _ in range(count):
        LifecycleTransition.objects.create(user=user, from_state="goodbye_sent", to_state=to,
                                           trigger="goodbye_timeout", at=now - timedelta(days=days_ago),
                                           actor="job:daily_engagement", job_kind="daily_engagement")


def test_the_user_page_shows_the_state_and_its_transitions(admin_client):
    user = goodbye_sent()
    transitions(user, 1, 2)
    page = admin_client.get(reverse("admin:engagement_enduser_change", args=[user.pk])).text
    assert "pulse-lifecycle-state" in page and "goodbye_sent" in page
    assert page.count("goodbye_timeout") == 2 and "daily_engagement" in page


def test_the_user_page_says_so_when_there_is_no_state_yet(admin_client):
    from tests.factories import EndUserFactory

    user = EndUserFactory()
    page = admin_client.get(reverse("admin:engagement_enduser_change", args=[user.pk])).text
    assert "No lifecycle state yet" in page


def test_the_overview_counts_users_per_state_and_charts_30_days(admin_client):
    users = [user_in(), user_in(), user_in(S.DORMANT), goodbye_sent()]
    transitions(users[0], 0, 3)
    transitions(users[1], 29, 1, to="active")
    transitions(users[1], 30, 5)  # outside the 30 days
    assert dict(users_per_state()) == {"active": 2, "goodbye_sent": 1, "help_flow": 0, "remind_later": 0,
                                       "dormant": 1}
    drawn = chart(timezone.now())
    assert drawn["total"] == 4 and drawn["peak"] == 3 and len(drawn["rects"]) == 2
    page = admin_client.get(reverse("admin:engagement_lifecyclestate_overview")).text
    assert '<svg id="lifecycle-chart"' in page and page.count('class="bar"') == 2
    assert '<script' not in page.split('id="content-main"')[1].split("</svg>")[0]


def test_the_overview_needs_staff(client):
    response = client.get(reverse("admin:engagement_lifecyclestate_overview"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_the_overview_and_the_lists_answer_with_no_rows_at_all(admin_client):
    for name in ("admin:engagement_lifecyclestate_overview", "admin:engagement_lifecyclestate_changelist",
                 "admin:engagement_lifecycletransition_changelist"):
        assert admin_client.get(reverse(name)).status_code == 200
