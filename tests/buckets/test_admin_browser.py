"""The bucket editor in headless Chromium: the live preview follows the criteria as they are typed."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.browser import CHROMIUM, open_page
from tests.engagement.test_admin_browser import PASSWORD
from tests.factories import EndUserFactory, SignalFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (apt install chromium)"),
]


@pytest.fixture
def site(transactional_db, django_user_model):
    django_user_model.objects.create_superuser("staff", "staff@example.com", PASSWORD)
    now = timezone.now()
    for name in ("olivia", "omar", "pat"):
        user = EndUserFactory(external_id=name, properties={"plan": "pro" if name != "pat" else "free"})
        SignalFactory(user=user, name="app_opened", occurred_at=now - timedelta(days=2), state="processed")


@pytest.fixture
def page(site):
    """Opened after `site` (tests/browser.py)."""
    with open_page() as page:
        yield page


def test_staff_see_who_matches_while_typing_and_save_the_bucket(site, live_server, page):
    page.goto(f"{live_server.url}/admin/login/?next=/admin/buckets/bucket/add/")
    page.fill("#id_username", "staff")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/buckets/bucket/add/")
    page.fill("#id_slug", "pro-openers")
    page.fill("#id_name", "Pro openers")

    page.locator("#id_criteria").press_sequentially('{"any": [', delay=5)
    page.wait_for_selector("#bucket-preview-errors:has-text('not valid JSON yet')")

    page.fill("#id_criteria", "")
    page.locator("#id_criteria").press_sequentially(json.dumps({"event": "app_opened", "check": "exists"}))
    page.wait_for_selector("#bucket-preview-count:has-text('3 users match now')")

    criteria = {"all": [{"event": "app_opened", "check": "exists", "within": "7d"},
                        {"property": "plan", "op": "eq", "value": "pro"}]}
    page.fill("#id_criteria", json.dumps(criteria))
    page.wait_for_selector("#bucket-preview-count:has-text('2 users match now')")
    assert page.locator("#bucket-preview-sample li").all_inner_texts() == ["ext:olivia", "ext:omar"]

    page.click("input[name=_save]")
    page.wait_for_url(f"{live_server.url}/admin/buckets/bucket/")
    assert "Pro openers" in page.locator("#result_list").inner_text()

