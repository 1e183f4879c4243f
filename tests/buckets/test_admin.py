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
            "criteria": json.dumps(OPENED), "enabled": "on", "entry_limit": "always",
            "reactions-TOTAL_FORMS": "0", "reactions-INITIAL_FORMS": "0", **overrides}


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


def test_the_bucket_list_shows_each_buckets_size_and_its_14_day_chart(staff):
    from buckets.definitions import create_bucket
    from tests.buckets.helpers import drain, signal

    create_bucket({"slug": "openers", "name": "Openers", "criteria": OPENED}, actor="t", now=timezone.now())
    for name in ("a", "b"):
        signal(EndUserFactory(external_id=name))
    drain()
    text = staff.get("/admin/buckets/bucket/").content.decode()
    assert "<svg" in text and "2 entered, 0 left in 14 days" in text
    assert ">2</td>" in text


def test_members_and_transitions_are_listed_and_read_only(staff):
    from buckets.definitions import create_bucket
    from tests.buckets.helpers import drain, signal

    bucket = create_bucket({"slug": "openers", "name": "Openers", "criteria": OPENED}, actor="t",
                           now=timezone.now())
    signal(EndUserFactory(external_id="a"))
    drain()
    members = staff.get(f"/admin/buckets/bucketmembership/?bucket__id__exact={bucket.pk}")
    transitions = staff.get("/admin/buckets/buckettransition/")
    assert members.status_code == transitions.status_code == 200
    assert "entered" in transitions.content.decode()
    assert staff.get("/admin/buckets/bucketmembership/add/").status_code == 403


def test_reactions_are_edited_inline_and_checked_like_the_api(staff):
    form = _form(**{"reactions-TOTAL_FORMS": "1", "reactions-INITIAL_FORMS": "0",
                    "reactions-0-key": "hi", "reactions-0-on": "enter", "reactions-0-reasons": "[]",
                    "reactions-0-action": "message", "reactions-0-target": "no.such.template",
                    "reactions-0-position": "0", "entry_limit": "always"})
    response = staff.post("/admin/buckets/bucket/add/", form)
    assert response.status_code == 200 and "no live template" in response.content.decode()
    form["reactions-0-action"], form["reactions-0-target"] = "signal", "opener.joined"
    response = staff.post("/admin/buckets/bucket/add/", form)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert Bucket.objects.get().reactions.get().target == "opener.joined"


def test_the_user_page_shows_the_users_memberships(staff):
    from buckets.definitions import create_bucket
    from tests.buckets.helpers import drain, signal

    create_bucket({"slug": "openers", "name": "Openers", "criteria": OPENED}, actor="t", now=timezone.now())
    user = EndUserFactory(external_id="a")
    signal(user)
    drain()
    text = staff.get(f"/admin/engagement/enduser/{user.pk}/change/").content.decode()
    assert "Buckets (latest 50 stays)" in text and "openers" in text and "<strong>active</strong>" in text
