"""The bucket admin: staff define and edit buckets, errors shown at their paths, and the preview."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from buckets.models import Bucket
from tests.factories import EndUserFactory, SignalFactory

pytestmark = pytest.mark.django_db
OPENED = {"event": "app_opened", "check": "exists"}
PREVIEW = "/admin/buckets/bucket/preview/"


@pytest.fixture
def staff(client, django_user_model):
    user = django_user_model.objects.create_superuser("ana", "ana@example.com", "pw")
    client.force_login(user)
    return client


def _form(**overrides):
    return {"slug": "openers", "name": "Openers", "description": "", "kind": "dynamic",
            "criteria": json.dumps(OPENED), "enabled": "on", **overrides}


def test_staff_define_a_bucket_recorded_with_their_name(staff):
    response = staff.post("/admin/buckets/bucket/add/", _form())
    assert response.status_code == 302, response.content.decode()[:2000]
    bucket = Bucket.objects.get()
    assert bucket.criteria == OPENED and bucket.created_by == bucket.updated_by == "staff:ana"
    assert len(bucket.criteria_fingerprint) == 64


def test_the_editor_shows_errors_at_their_paths(staff):
    criteria = {"all": [OPENED, {"event": "x", "check": "exists", "within": "soon"}]}
    response = staff.post("/admin/buckets/bucket/add/", _form(criteria=json.dumps(criteria)))
    assert response.status_code == 200
    assert "criteria.all[1].within: must be a duration like 90s, 15m, 48h or 7d" in response.content.decode()
    assert not Bucket.objects.exists()


def test_editing_keeps_the_slug_and_records_the_editor(staff):
    staff.post("/admin/buckets/bucket/add/", _form())
    bucket = Bucket.objects.get()
    form = _form(name="Openers (all time)")
    del form["slug"]
    response = staff.post(f"/admin/buckets/bucket/{bucket.pk}/change/", form)
    assert response.status_code == 302
    bucket.refresh_from_db()
    assert bucket.name == "Openers (all time)" and bucket.slug == "openers"


def test_the_preview_fragment_counts_users_matching_now(staff):
    for name in ("a", "b"):
        SignalFactory(user=EndUserFactory(external_id=name), name="app_opened",
                      occurred_at=timezone.now() - timedelta(hours=1))
    response = staff.post(PREVIEW, {"criteria": json.dumps(OPENED), "kind": "dynamic"})
    text = response.content.decode()
    assert "2 users match now" in text and "ext:a" in text and "ext:b" in text


@pytest.mark.parametrize("criteria, shown", [
    ('{"all": [', "not valid JSON yet"),
    ('{"any": []}', "criteria.any"),
    ('{"not": {"event": "x", "check": "exists"}}', "must be positive"),
])
def test_the_preview_fragment_shows_why_criteria_cannot_be_previewed(staff, criteria, shown):
    assert shown in staff.post(PREVIEW, {"criteria": criteria}).content.decode()


def test_the_preview_needs_a_staff_login(client):
    response = client.post(PREVIEW, {"criteria": json.dumps(OPENED)})
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
