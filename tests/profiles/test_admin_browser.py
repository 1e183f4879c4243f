"""The profile admin in headless Chromium: the Rebuild profile button and the users-list action."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.browser import CHROMIUM, open_page
from tests.engagement.test_admin_browser import PASSWORD
from tests.factories import EndUserFactory

from .helpers import signal

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (apt install chromium)"),
]


@pytest.fixture
def site(transactional_db, django_user_model):
    django_user_model.objects.create_superuser("staff", "staff@example.com", PASSWORD)
    now = timezone.now()
    olivia = EndUserFactory(external_id="olivia", last_seen_at=now)
    omar = EndUserFactory(external_id="omar", last_seen_at=now)
    for at in (now - timedelta(hours=1), now - timedelta(hours=2)):
        signal(olivia, "tip.served", at)
    signal(omar, "tip.served", now - timedelta(hours=1))
    return {"olivia": olivia.pk, "omar": omar.pk}


@pytest.fixture
def page(site):
    """Opened after `site` (tests/browser.py)."""
    with open_page() as page:
        yield page


def log_in(page, url):
    page.goto(f"{url}/admin/login/?next=/admin/")
    page.fill("#id_username", "staff")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{url}/admin/")


def value_of(page, feature):
    return page.locator(f'#pulse-profile tr[data-feature="{feature}"] .pulse-value').inner_text().strip()


def test_staff_rebuild_a_users_profile_from_the_user_page_and_see_the_new_values(site, live_server, page):
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/admin/engagement/enduser/{site['olivia']}/change/")
    assert value_of(page, "tip_volume_30d") == "—"
    page.click("#pulse-rebuild-profile")
    page.wait_for_selector(".messagelist")
    assert "Profile rebuilt" in page.locator(".messagelist").inner_text()
    assert value_of(page, "tip_volume_30d") == "2"
    assert value_of(page, "completion_rate_30d") == "null"
    stale = page.locator('#pulse-profile tr[data-feature="tip_volume_30d"] .pulse-stale').inner_text()
    assert stale.strip() == "fresh"


def test_staff_rebuild_profiles_of_selected_users_from_the_users_list(site, live_server, page):
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/admin/engagement/enduser/")
    page.check(f'input[name="_selected_action"][value="{site["olivia"]}"]')
    page.check(f'input[name="_selected_action"][value="{site["omar"]}"]')
    page.select_option('select[name="action"]', "rebuild_profiles_action")
    page.click('button[name="index"]')
    page.wait_for_selector(".messagelist")
    assert "Rebuilt the profiles of 2 users" in page.locator(".messagelist").inner_text()
    page.goto(f"{live_server.url}/admin/engagement/enduser/{site['omar']}/change/")
    assert value_of(page, "tip_volume_30d") == "1"
    page.goto(f"{live_server.url}/admin/profiles/profilefeaturevalue/staleness/")
    fresh = page.locator('#pulse-staleness tr[data-feature="tip_volume_30d"] .fresh').inner_text()
    assert fresh.strip() == "2"
    assert page.locator("#pulse-staleness-chart rect.bar-fresh").count() >= 1
