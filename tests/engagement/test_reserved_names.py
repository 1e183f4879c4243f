"""Signal names starting with `$` are Pulse's own: the public ingest paths refuse them."""

import base64
import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from engagement.imports import import_signals
from engagement.models import Signal

pytestmark = pytest.mark.django_db


@pytest.fixture
def segment(make_key):
    raw = make_key("ingest")
    client = Client()
    auth = "Basic " + base64.b64encode(f"{raw}:".encode()).decode()

    def post(kind, body):
        return client.post(f"/v1/{kind}", json.dumps(body), content_type="application/json",
                           headers={"Authorization": auth})

    return post


def native(name, **extra):
    return {"user": {"id": "u1"}, "name": name, **extra}


@pytest.mark.parametrize("name", ["$engage", "$lifecycle.changed", "$identify", "$", "  $bucket.entered"])
def test_a_native_signal_with_a_reserved_name_is_refused(api, name):
    response = api.post_json("/api/v1/signals", native(name))

    assert response.status_code == 400
    [rejected] = response.json()["error"]["details"]
    assert rejected["errors"] == [
        {"field": "name", "code": "reserved_name", "message": rejected["errors"][0]["message"]}
    ]
    assert not Signal.objects.exists()


def test_a_reserved_name_rejects_only_its_own_item_in_a_native_batch(api):
    body = {"signals": [native("report.exported"), native("$engage"), native("price$changed")]}

    response = api.post_json("/api/v1/signals", body)

    assert response.status_code == 202
    assert response.json()["accepted"] == 2
    assert [(r["index"], r["errors"][0]["code"]) for r in response.json()["rejected"]] == [
        (1, "reserved_name")
    ]
    assert sorted(Signal.objects.values_list("name", flat=True)) == ["price$changed", "report.exported"]


def test_a_reserved_name_is_reported_beside_the_other_errors_of_its_item(api):
    response = api.post_json("/api/v1/signals", {"signals": [native("$engage", colour="red")]})

    errors = response.json()["error"]["details"][0]["errors"]
    assert {(e["field"], e.get("code")) for e in errors} == {("name", "reserved_name"), ("colour", None)}


@pytest.mark.parametrize("event", ["$page", "$engage", "$lifecycle.changed"])
def test_a_segment_track_with_a_reserved_event_answers_400_reserved_name(segment, event):
    response = segment("track", {"userId": "u1", "event": event})

    assert response.status_code == 400
    assert response.json()["code"] == "reserved_name"
    assert not Signal.objects.exists()


def test_a_segment_batch_drops_the_reserved_track_alone(segment):
    response = segment("batch", {"batch": [
        {"type": "track", "userId": "u1", "event": "$engage"},
        {"type": "track", "userId": "u1", "event": "Paid"},
    ]})

    assert response.status_code == 200
    assert [(d["index"], d["code"]) for d in response.json()["dropped"]] == [(0, "reserved_name")]
    assert list(Signal.objects.values_list("name", flat=True)) == ["Paid"]


def test_segment_page_and_screen_calls_still_become_dollar_page_and_screen(segment):
    assert segment("page", {"userId": "u1", "name": "Pricing"}).status_code == 200
    assert segment("screen", {"userId": "u1", "name": "$Home"}).status_code == 200

    assert sorted(Signal.objects.values_list("name", flat=True)) == ["$page", "$screen"]


def test_an_import_rejects_reserved_native_and_track_lines_but_imports_page_lines(tmp_path):
    now = timezone.now()
    day = (now - timedelta(days=2)).isoformat()
    lines = [
        native("$lifecycle.changed", occurred_at=day),
        {"type": "track", "userId": "u1", "event": "$engage", "timestamp": day},
        {"type": "page", "userId": "u1", "name": "Home", "timestamp": day},
        native("report.exported", occurred_at=day),
    ]
    path = tmp_path / "s.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))

    summary = import_signals(path, now=now)

    assert (summary.run.imported, summary.run.rejected) == (2, 2)
    with open(summary.run.report_path) as report:
        entries = [json.loads(line) for line in report]
    codes = [(e["line"], e["errors"][0]["code"]) for e in entries]
    assert codes == [(1, "reserved_name"), (2, "reserved_name")]
    assert sorted(Signal.objects.values_list("name", flat=True)) == ["$page", "report.exported"]
