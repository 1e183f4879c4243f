"""The profile panel, the Rebuild profile button, the users-list action (inline and as a job)
and the staleness panel, through Django's test client."""

from datetime import timedelta

import django_rq
import pytest
from django.test import Client
from django.utils import timezone
from rq import SimpleWorker

from engagement.models import JobRun
from profiles import registry
from profiles.models import ProfileFeatureValue
from tests.factories import EndUserFactory

from .helpers import signal

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(django_user_model):
    user = django_user_model.objects.create_superuser("staff", "staff@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


def test_the_user_page_shows_the_profile_table_and_a_rebuild_button(staff):
    user = EndUserFactory()
    page = staff.get(f"/admin/engagement/enduser/{user.pk}/change/").content.decode()
    assert 'id="pulse-profile"' in page and 'value="Rebuild profile"' in page
    assert "never" in page  # nothing computed: the panel only peeks
    assert not ProfileFeatureValue.objects.exists()


def test_the_rebuild_button_needs_a_post_with_csrf_and_then_shows_the_new_values(django_user_model):
    admin = django_user_model.objects.create_superuser("staff", "staff@example.com", "pw")
    user = EndUserFactory()
    signal(user, "tip.served", timezone.now() - timedelta(minutes=5))
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin)
    url = f"/admin/profiles/profilefeaturevalue/rebuild/{user.pk}/"
    assert client.post(url).status_code == 403  # no CSRF token
    assert client.get(url).status_code == 405
    page = client.get(f"/admin/engagement/enduser/{user.pk}/change/")
    token = page.cookies["csrftoken"].value
    response = client.post(url, {"csrfmiddlewaretoken": token}, follow=True)
    assert response.status_code == 200
    assert "Profile rebuilt" in response.content.decode()
    assert ProfileFeatureValue.objects.get(user=user, name="tip_volume_30d").value == 1


def test_the_users_action_rebuilds_a_small_selection_in_the_request(staff):
    users = [EndUserFactory() for _ in range(3)]
    response = staff.post("/admin/engagement/enduser/", {
        "action": "rebuild_profiles_action", "_selected_action": [u.pk for u in users]}, follow=True)
    assert "Rebuilt the profiles of 3 users" in response.content.decode()
    computed = ProfileFeatureValue.objects.filter(computed_at__isnull=False)
    assert computed.count() == 3 * len(registry.features())


def test_a_large_selection_becomes_a_job_whose_progress_is_recorded(staff, settings):
    settings.PULSE_PROFILE_INLINE_REBUILD = 2
    users = [EndUserFactory() for _ in range(5)]
    response = staff.post("/admin/engagement/enduser/", {
        "action": "rebuild_profiles_action", "_selected_action": [u.pk for u in users]}, follow=True)
    run = JobRun.objects.get(kind="rebuild_profiles")
    assert f"job run #{run.pk}" in response.content.decode()
    assert (run.status, run.queue, run.trigger) == ("queued", "default", "manual")
    assert not ProfileFeatureValue.objects.exists()
    queue = django_rq.get_queue("default")
    SimpleWorker([queue], connection=queue.connection).work(burst=True)
    run.refresh_from_db()
    assert run.status == "succeeded"
    assert (run.cursor["done"], run.cursor["total"], run.processed) == (5, 5, 5)
    computed = ProfileFeatureValue.objects.filter(computed_at__isnull=False)
    assert computed.count() == 5 * len(registry.features())


def test_the_staleness_panel_draws_its_chart_and_queues_a_rebuild_of_stale_values(staff):
    EndUserFactory(last_seen_at=timezone.now())
    page = staff.get("/admin/profiles/profilefeaturevalue/staleness/")
    html = page.content.decode()
    assert page.status_code == 200
    assert '<svg xmlns="http://www.w3.org/2000/svg"' in html and "<script" not in html.split("<svg")[1]
    assert 'id="pulse-eligible">1<' in html
    assert 'data-feature="tip_volume_30d"><td>tip_volume_30d</td><td class="fresh">0</td>' in html
    response = staff.post("/admin/profiles/profilefeaturevalue/staleness/", follow=True)
    assert "Rebuild queued" in response.content.decode()
    run = JobRun.objects.get(kind="rebuild_profiles")
    assert run.cursor["scope"] == "eligible" and run.cursor["stale_only"] is True
    queue = django_rq.get_queue("default")
    SimpleWorker([queue], connection=queue.connection).work(burst=True)
    html = staff.get("/admin/profiles/profilefeaturevalue/staleness/").content.decode()
    assert 'data-feature="tip_volume_30d"><td>tip_volume_30d</td><td class="fresh">1</td>' in html


def test_the_stored_values_list_opens_and_links_the_staleness_panel(staff):
    EndUserFactory()
    page = staff.get("/admin/profiles/profilefeaturevalue/")
    assert page.status_code == 200
    assert "/admin/profiles/profilefeaturevalue/staleness/" in page.content.decode()
