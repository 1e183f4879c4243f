"""The staff admin in a real headless Chromium (Debian's /usr/bin/chromium), against live_server."""

from datetime import timedelta

import pytest
from django.utils import timezone

from engagement import keys
from engagement.models import JobRun
from tests.browser import CHROMIUM, open_page
from tests.factories import EndUserFactory, MembershipFactory, SignalFactory, TenantFactory

PASSWORD = "correct-horse-battery-staple"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (apt install chromium)"),
]


@pytest.fixture
def site(transactional_db, django_user_model):
    """A staff login and one row for every admin list, created before the browser starts."""
    django_user_model.objects.create_superuser("staff", "staff@example.com", PASSWORD)
    now = timezone.now()
    tenant = TenantFactory(key="northwind", name="Northwind Traders")
    user = EndUserFactory(external_id="olivia", email="olivia.smith@northwind.example")
    MembershipFactory(user=user, tenant=tenant, role="admin")
    SignalFactory(user=user, tenant=tenant, name="issue.viewed", item="AI-1799", interaction="view",
                  state="processed", occurred_at=now - timedelta(minutes=3))
    SignalFactory(user=user, tenant=tenant, name="tip.served", state="failed",
                  error="ValueError: no such tip", occurred_at=now - timedelta(minutes=1))
    keys.create_api_key("segment bridge", "ingest", now=now)
    JobRun.objects.create(kind="prune_job_runs", window=now.replace(second=0, microsecond=0),
                          status="succeeded", attempts=1, duration_ms=250)
    return {"user": user}


@pytest.fixture
def page(site):
    """Started after `site`: Playwright's sync API runs an event loop in this thread, and
    Django refuses ORM calls from a thread with a running loop, so no ORM call happens
    while the browser is open (the rows are read before, the flush happens after)."""
    with open_page() as page:
        yield page


def test_staff_log_in_and_open_every_admin_list_and_a_user_page(site, live_server, page, tmp_path):
    page.goto(f"{live_server.url}/admin/")
    assert "/admin/login/" in page.url
    page.fill("#id_username", "staff")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")
    assert page.locator("#site-name").inner_text() == "Pulse admin"

    pages = [
        ("/admin/engagement/enduser/", "Select user to change"),
        ("/admin/engagement/tenant/", "Select tenant to change"),
        ("/admin/engagement/apikey/", "Select API key to change"),
        ("/admin/engagement/jobrun/", "Select job run to view"),
        ("/admin/engagement/signal/", "Select signal to view"),
        ("/admin/engagement/erasure/", "Select erasure to view"),
        (f"/admin/engagement/enduser/{site['user'].pk}/change/", "Change user"),
    ]
    for path, heading in pages:
        response = page.goto(live_server.url + path)
        assert response.status == 200, path
        assert page.locator("#content h1").inner_text() == heading, path

    # The user page ends with the recent-signals timeline, newest first, errors shown.
    timeline = page.locator(".pulse-panel table.pulse-timeline")
    assert timeline.locator("tbody tr").count() == 2
    assert "tip.served" in timeline.locator("tbody tr").first.inner_text()
    assert "no such tip" in timeline.inner_text()

    shot = tmp_path / "user-page.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.exists() and shot.stat().st_size > 1000


@pytest.fixture
def lifecycle_site(site):
    from engagement.models import LifecycleState, LifecycleTransition

    now = timezone.now()
    user = site["user"]
    LifecycleState.objects.create(user=user, state="goodbye_sent", last_activity_at=now - timedelta(days=15),
                                  changed_at=now, goodbye_sent_at=now,
                                  goodbye_expires_at=now + timedelta(days=2))
    for days in (0, 3, 3, 12):
        LifecycleTransition.objects.create(user=user, from_state="active", to_state="goodbye_sent",
                                           trigger="inactivity_14d", at=now - timedelta(days=days),
                                           actor="job:daily_engagement")
    return site


def test_staff_see_the_lifecycle_overview_chart_and_the_users_lifecycle(lifecycle_site, live_server, page):
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "staff")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")

    response = page.goto(f"{live_server.url}/admin/engagement/lifecyclestate/overview/")
    assert response.status == 200
    assert page.locator("td.pulse-count[data-state=goodbye_sent]").inner_text() == "1"
    chart = page.locator("svg#lifecycle-chart")
    assert chart.is_visible()
    assert chart.locator("rect.bar").count() == 3, "three days with transitions"
    box = chart.bounding_box()
    assert box["width"] > 300 and box["height"] > 100, "the chart is drawn, not collapsed"

    page.goto(f"{live_server.url}/admin/engagement/enduser/{lifecycle_site['user'].pk}/change/")
    assert page.locator(".pulse-lifecycle-state").inner_text() == "goodbye_sent"
    assert page.locator("table.pulse-lifecycle-transitions tbody tr").count() == 4
