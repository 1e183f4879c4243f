"""Honest idempotency: keys namespaced by origin, a repeated key judged by what was sent."""

import base64
import importlib
import json
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from engagement import idempotency
from engagement.erase import erase_user
from engagement.imports import import_signals
from engagement.ingest import ingest_signals
from engagement.models import EndUser, Signal
from engagement.native import parse_signal
from tests.factories import EndUserFactory

pytestmark = pytest.mark.django_db

migration = importlib.import_module("engagement.migrations.0008_signal_request_hash")


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def native(**overrides):
    data = {"user": {"id": "u1"}, "name": "report.exported", "idempotency_key": "k-1"}
    data.update(overrides)
    return data


@pytest.fixture
def segment(make_key):
    """segment("track", {...}) -> response, with a write key in Basic auth."""
    raw = make_key("ingest")
    client = Client()
    auth = "Basic " + base64.b64encode(f"{raw}:".encode()).decode()

    def post(kind, body):
        return client.post(f"/v1/{kind}", json.dumps(body), content_type="application/json",
                           headers={"Authorization": auth})

    return post


def write_lines(path, lines):
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def report(summary):
    with open(summary.run.report_path) as lines:
        return [json.loads(line) for line in lines]


# --- namespaces ---------------------------------------------------------------------------


def test_a_native_key_seg_x_does_not_pre_empt_the_segment_message_x(api, segment):
    assert api.post_json("/api/v1/signals", native(idempotency_key="seg:x")).json()["accepted"] == 1

    assert segment("track", {"userId": "u1", "event": "Paid", "messageId": "x"}).status_code == 200

    assert sorted(Signal.objects.values_list("idempotency_key", flat=True)) == ["api:seg:x", "seg:x"]


def test_a_segment_message_id_does_not_pre_empt_the_same_native_key(api, segment):
    assert segment("track", {"userId": "u1", "event": "Paid", "messageId": "k-1"}).status_code == 200

    body = api.post_json("/api/v1/signals", native()).json()

    assert body == {"accepted": 1, "duplicates": 0, "rejected": []}
    assert sorted(Signal.objects.values_list("idempotency_key", flat=True)) == ["api:k-1", "seg:k-1"]


def test_a_native_key_too_long_once_prefixed_is_stored_as_its_digest_and_still_deduplicates(api):
    long_key = "k" * 255
    api.post_json("/api/v1/signals", native(idempotency_key=long_key))

    assert api.post_json("/api/v1/signals", native(idempotency_key=long_key)).json()["duplicates"] == 1
    stored = Signal.objects.get().idempotency_key
    assert stored.startswith("api:sha256:") and len(stored) <= 255


def test_a_signal_without_a_key_stores_no_hash(api):
    api.post_json("/api/v1/signals", {"user": {"id": "u1"}, "name": "x"})

    assert Signal.objects.get().request_hash is None


# --- native retries and conflicts ----------------------------------------------------------


def test_a_native_retry_without_occurred_at_is_a_duplicate_even_minutes_later(api):
    assert api.post_json("/api/v1/signals", native()).json()["accepted"] == 1

    with time_machine.travel(timezone.now() + timedelta(minutes=3)):
        second = api.post_json("/api/v1/signals", native())

    assert second.json() == {"accepted": 0, "duplicates": 1, "rejected": []}
    assert Signal.objects.count() == 1


def test_a_retry_sending_null_for_an_absent_field_is_a_duplicate(api):
    api.post_json("/api/v1/signals", native())

    assert api.post_json("/api/v1/signals", native(tenant=None)).json()["duplicates"] == 1


def test_the_hash_ignores_key_order(api):
    first = parse_signal(native(properties={"a": 1, "b": 2}))
    second = parse_signal(dict(reversed(list(native(properties={"b": 2, "a": 1}).items()))))

    assert first.request_hash == second.request_hash and len(first.request_hash) == 32


@pytest.mark.parametrize(
    "change",
    [
        {"name": "report.deleted"},
        {"user": {"id": "u2"}},
        {"properties": {"format": "pdf"}},
        {"occurred_at": "2026-01-31T12:00:00Z"},
    ],
    ids=["event", "user", "properties", "occurred_at"],
)
def test_the_same_key_for_a_different_item_is_an_idempotency_conflict_and_its_siblings_are_stored(
    api, change, now
):
    if "occurred_at" in change:
        change = {"occurred_at": iso(now - timedelta(minutes=1))}
    api.post_json("/api/v1/signals", native(properties={"format": "csv"}))

    body = api.post_json(
        "/api/v1/signals", {"signals": [native(**change), native(idempotency_key="k-2")]}
    ).json()

    assert (body["accepted"], body["duplicates"]) == (1, 0)
    assert [r["index"] for r in body["rejected"]] == [0]
    [error] = body["rejected"][0]["errors"]
    assert (error["field"], error["code"]) == ("idempotency_key", "idempotency_conflict")
    assert sorted(Signal.objects.values_list("idempotency_key", flat=True)) == ["api:k-1", "api:k-2"]


def test_a_lone_conflicting_signal_answers_400_and_names_the_code(api):
    api.post_json("/api/v1/signals", native())

    response = api.post_json("/api/v1/signals", native(name="something.else"))

    assert response.status_code == 400
    assert response.json()["error"]["details"][0]["errors"][0]["code"] == "idempotency_conflict"
    assert Signal.objects.get().name == "report.exported"


def test_a_conflicting_item_creates_no_user(api):
    api.post_json("/api/v1/signals", native())

    api.post_json("/api/v1/signals", native(user={"id": "stranger"}))

    assert not EndUser.objects.filter(external_id="stranger").exists()


def test_two_identical_items_with_one_key_in_a_batch_store_one_and_count_a_duplicate(api):
    body = api.post_json("/api/v1/signals", {"signals": [native(), native()]}).json()

    assert body == {"accepted": 1, "duplicates": 1, "rejected": []}


def test_two_different_items_with_one_key_in_a_batch_store_the_first_and_reject_the_second(api):
    body = api.post_json(
        "/api/v1/signals", {"signals": [native(), native(name="other"), native(idempotency_key="k-3")]}
    ).json()

    assert (body["accepted"], body["duplicates"]) == (2, 0)
    assert [(r["index"], r["errors"][0]["code"]) for r in body["rejected"]] == [(1, "idempotency_conflict")]
    assert Signal.objects.get(idempotency_key="api:k-1").name == "report.exported"


def test_a_stored_key_without_a_hash_matches_any_retry(api):
    api.post_json("/api/v1/signals", native())
    Signal.objects.update(request_hash=None)  # as stored before hashes existed

    assert api.post_json("/api/v1/signals", native(name="changed")).json()["duplicates"] == 1


def _all_new(entries):
    return [idempotency.NEW for _ in entries]


def test_a_request_losing_the_race_for_a_key_counts_as_a_duplicate_when_it_sent_the_same(now, monkeypatch):
    ingest_signals([parse_signal(native())], source="api", now=now)
    # The other request committed after this one looked its keys up.
    monkeypatch.setattr(idempotency, "verdicts", _all_new)

    result = ingest_signals([parse_signal(native())], source="api", now=now)

    assert (result.accepted, result.duplicates, result.rejected) == (0, 1, [])
    assert Signal.objects.count() == 1


def test_a_request_losing_the_race_for_a_key_with_other_content_is_a_conflict(now, monkeypatch):
    ingest_signals([parse_signal(native())], source="api", now=now)
    monkeypatch.setattr(idempotency, "verdicts", _all_new)

    result = ingest_signals(
        [parse_signal(native(idempotency_key="k-2")), parse_signal(native(name="other"))],
        source="api", now=now,
    )

    assert (result.accepted, result.duplicates) == (1, 0)
    assert [(r["index"], r["errors"][0]["code"]) for r in result.rejected] == [(1, "idempotency_conflict")]


@pytest.mark.parametrize("replay", [False, True], ids=["new", "replayed"])
def test_ingest_runs_as_many_queries_for_a_hundred_keyed_items_as_for_one(
    now, replay, django_assert_max_num_queries
):
    def batch(size, tag):
        return [parse_signal(native(user={"id": f"u{i}"}, idempotency_key=f"{tag}-{i}")) for i in range(size)]

    if replay:
        ingest_signals(batch(1, "one"), source="api", now=now)
        ingest_signals(batch(100, "many"), source="api", now=now)
    with CaptureQueriesContext(connection) as single:
        ingest_signals(batch(1, "one"), source="api", now=now)

    with django_assert_max_num_queries(len(single.captured_queries)):
        ingest_signals(batch(100, "many"), source="api", now=now)
    assert Signal.objects.count() == 101


def test_erasing_a_user_clears_the_hashes_of_what_it_sent(api, now):
    api.post_json("/api/v1/signals", native())

    erase_user(EndUser.objects.get(), erased_by="test", now=now)

    assert Signal.objects.get().request_hash is None


# --- Segment ------------------------------------------------------------------------------


def test_a_segment_retry_with_a_new_sent_at_is_a_duplicate(segment, now):
    message = {"type": "track", "userId": "u1", "event": "Paid", "messageId": "m-1", "timestamp": iso(now),
               "sentAt": iso(now)}
    segment("batch", {"batch": [message]})

    retry = segment("batch", {"batch": [{**message, "sentAt": iso(now + timedelta(seconds=30))}],
                              "sentAt": iso(now + timedelta(seconds=30))})

    assert retry.json() == {"success": True}
    assert Signal.objects.count() == 1


def test_a_message_id_reused_for_another_event_answers_400_with_idempotency_conflict(segment):
    segment("track", {"userId": "u1", "event": "Paid", "messageId": "m-1"})

    response = segment("track", {"userId": "u1", "event": "Refunded", "messageId": "m-1"})

    assert response.status_code == 400
    assert response.json()["code"] == "idempotency_conflict"
    assert Signal.objects.get().name == "Paid"


def test_a_batch_drops_the_reused_message_id_alone_and_stores_the_rest(segment):
    segment("track", {"userId": "u1", "event": "Paid", "messageId": "m-1"})

    response = segment("batch", {"batch": [
        {"type": "track", "userId": "u2", "event": "Paid", "messageId": "m-1"},
        {"type": "track", "userId": "u2", "event": "Paid", "messageId": "m-2"},
    ]})

    assert response.status_code == 200
    assert [(d["index"], d["code"]) for d in response.json()["dropped"]] == [(0, "idempotency_conflict")]
    assert set(Signal.objects.values_list("idempotency_key", flat=True)) == {"seg:m-1", "seg:m-2"}


def test_an_identify_replayed_with_different_traits_is_a_conflict(segment):
    segment("identify", {"userId": "u1", "traits": {"plan": "pro"}, "messageId": "id-1"})

    response = segment("identify", {"userId": "u1", "traits": {"plan": "free"}, "messageId": "id-1"})

    assert response.status_code == 400 and response.json()["code"] == "idempotency_conflict"
    assert EndUser.objects.get().properties == {"plan": "pro"}


def test_an_identify_replayed_as_sent_is_a_duplicate_that_touches_no_user(segment, now):
    body = {"userId": "u1", "traits": {"plan": "pro"}, "messageId": "id-1", "sentAt": iso(now)}
    segment("identify", body)
    EndUser.objects.update(properties={"plan": "changed since"})

    assert segment("identify", {**body, "sentAt": iso(now + timedelta(seconds=5))}).status_code == 200

    assert EndUser.objects.get().properties == {"plan": "changed since"}
    assert Signal.objects.filter(name="$identify").count() == 1


def test_a_track_reusing_the_message_id_of_an_identify_in_the_same_batch_is_dropped(segment):
    response = segment("batch", {"batch": [
        {"type": "identify", "userId": "u1", "messageId": "m-1"},
        {"type": "track", "userId": "u1", "event": "Paid", "messageId": "m-1"},
    ]})

    assert [(d["index"], d["code"]) for d in response.json()["dropped"]] == [(1, "idempotency_conflict")]
    assert list(Signal.objects.values_list("name", flat=True)) == ["$identify"]


def test_an_identify_losing_the_race_for_its_message_id_is_a_duplicate_or_a_conflict_by_content(
    segment, monkeypatch
):
    segment("identify", {"userId": "u1", "traits": {"plan": "pro"}, "messageId": "id-1"})
    monkeypatch.setattr(idempotency, "verdicts", _all_new)

    same = segment("identify", {"userId": "u1", "traits": {"plan": "pro"}, "messageId": "id-1"})
    other = segment("identify", {"userId": "u1", "traits": {"plan": "free"}, "messageId": "id-1"})

    assert same.status_code == 200
    assert (other.status_code, other.json()["code"]) == (400, "idempotency_conflict")
    assert EndUser.objects.get().properties == {"plan": "pro"}


# --- imports --------------------------------------------------------------------------------


def test_a_segment_export_line_imported_after_the_live_message_is_a_duplicate(segment, tmp_path, now):
    sent = now - timedelta(minutes=10)
    live = {"type": "track", "userId": "u1", "event": "Paid", "messageId": "m-1", "properties": {"total": 3},
            "timestamp": iso(sent - timedelta(seconds=2)), "sentAt": iso(sent),
            "context": {"library": {"name": "analytics-node"}}}
    segment("batch", {"batch": [live]})
    exported = {**live, "timestamp": iso(sent + timedelta(seconds=1)),
                "originalTimestamp": live["timestamp"], "receivedAt": iso(sent + timedelta(seconds=3)),
                "projectId": "p-1", "channel": "server", "version": 2,
                "context": {**live["context"], "ip": "203.0.113.9"}}

    summary = import_signals(write_lines(tmp_path / "export.jsonl", [exported]), now=now)

    assert (summary.run.imported, summary.run.duplicates, summary.run.rejected) == (0, 1, 0)
    assert Signal.objects.count() == 1


def test_a_segment_export_identify_with_other_traits_is_reported_as_a_conflict(segment, tmp_path, now):
    segment("identify", {"userId": "u1", "traits": {"plan": "pro"}, "messageId": "id-1"})
    line = {"type": "identify", "userId": "u1", "traits": {"plan": "free"}, "messageId": "id-1",
            "timestamp": iso(now - timedelta(days=1))}

    summary = import_signals(write_lines(tmp_path / "export.jsonl", [line]), now=now)

    assert summary.run.rejected == 1
    assert report(summary)[0]["errors"][0]["code"] == "idempotency_conflict"
    assert report(summary)[0]["errors"][0]["field"] == "messageId"
    assert EndUser.objects.get().properties == {"plan": "pro"}


def test_a_native_line_imported_after_the_same_live_request_is_a_duplicate(api, tmp_path, now):
    api.post_json("/api/v1/signals", native())

    summary = import_signals(write_lines(tmp_path / "s.jsonl", [native()]), now=now)

    assert (summary.run.imported, summary.run.duplicates) == (0, 1)


def test_a_native_line_reusing_a_live_key_for_other_content_is_rejected_in_the_report(api, tmp_path, now):
    api.post_json("/api/v1/signals", native())
    lines = [native(user={"id": "u9"}), native(idempotency_key="k-2")]

    summary = import_signals(write_lines(tmp_path / "s.jsonl", lines), now=now)

    assert (summary.run.imported, summary.run.rejected) == (1, 1)
    entry = report(summary)[0]
    assert (entry["line"], entry["errors"][0]["code"]) == (1, "idempotency_conflict")
    assert not EndUser.objects.filter(external_id="u9").exists()


def test_an_import_re_run_is_a_no_op_and_a_conflict_in_the_file_is_reported_each_time(tmp_path, now):
    day = iso(now - timedelta(days=3))
    lines = [
        native(occurred_at=day),
        native(occurred_at=day, name="other"),
        {"type": "track", "userId": "u2", "event": "Paid", "messageId": "m-1", "timestamp": day},
        {"type": "identify", "userId": "u2", "traits": {"plan": "pro"}, "messageId": "m-2", "timestamp": day},
    ]
    path = write_lines(tmp_path / "s.jsonl", lines)

    first = import_signals(path, now=now)
    stored = Signal.objects.count()
    second = import_signals(path, now=now, restart=True)

    assert (first.run.imported, first.run.duplicates, first.run.rejected) == (3, 0, 1)
    assert (second.run.imported, second.run.duplicates, second.run.rejected) == (0, 3, 1)
    assert Signal.objects.count() == stored == 3
    assert report(second)[0]["line"] == 2 and report(second)[0]["errors"][0]["code"] == "idempotency_conflict"


def test_an_imported_native_line_hashes_exactly_as_the_live_request(tmp_path, now):
    item = native(properties={"b": [1, 2], "a": "é"}, occurred_at=iso(now - timedelta(hours=1)))
    live = parse_signal(json.loads(json.dumps(item)))

    import_signals(write_lines(tmp_path / "s.jsonl", [item]), now=now)

    assert Signal.objects.get().request_hash == live.request_hash


# --- the data migration -----------------------------------------------------------------------


def _legacy(user, key, source):
    now = timezone.now()
    return Signal.objects.create(user=user, name="x", occurred_at=now, received_at=now, source=source,
                                 idempotency_key=key)


def test_the_migration_moves_stored_native_keys_into_the_api_namespace():
    user = EndUserFactory()
    long_key = "L" * 253
    rows = {
        ("api", "k-1"): "api:k-1",
        ("api", "seg:x"): "api:seg:x",
        ("api", "foo"): "api:foo",
        ("api", "api:foo"): "api:api:foo",  # converted longest first: no clash with foo mid-way
        ("api", long_key): idempotency.namespaced("api:", long_key),
        ("import", "own-key"): "api:own-key",
        ("import", "seg:m-1"): "seg:m-1",
        ("import", "import:abc"): "import:abc",
        ("import", "demo:1:2"): "demo:1:2",
        ("segment", "seg:y"): "seg:y",
        ("system", "seg:id-1"): "seg:id-1",
    }
    made = {pair: _legacy(user, pair[1], pair[0]) for pair in rows}

    changed = migration.namespace_native_keys(Signal)

    assert changed == 6
    for pair, expected in rows.items():
        assert Signal.objects.get(pk=made[pair].pk).idempotency_key == expected, pair


def test_the_migration_leaves_signals_without_a_key_alone():
    _legacy(EndUserFactory(), None, "api")

    assert migration.namespace_native_keys(Signal) == 0
    assert Signal.objects.get().idempotency_key is None


def test_an_old_native_retry_is_still_a_duplicate_after_the_migration(api):
    _legacy(EndUserFactory(external_id="u1"), "k-1", "api")
    migration.namespace_native_keys(Signal)

    assert api.post_json("/api/v1/signals", native()).json()["duplicates"] == 1


def test_the_migration_reverses_to_raw_keys():
    user = EndUserFactory()
    for key in ("foo", "api:foo", "seg:x"):
        _legacy(user, key, "api")
    _legacy(user, "seg:m", "segment")
    migration.namespace_native_keys(Signal)

    migration.strip_native_keys(Signal)

    assert sorted(Signal.objects.values_list("idempotency_key", flat=True)) == [
        "api:foo", "foo", "seg:m", "seg:x",
    ]


@pytest.mark.django_db(transaction=True)
def test_migrating_forwards_and_back_converts_the_keys_of_the_historical_models():
    executor = MigrationExecutor(connection)
    executor.migrate([("engagement", "0007_signal_queue")])
    old = executor.loader.project_state([("engagement", "0007_signal_queue")]).apps
    now = timezone.now()
    user = old.get_model("engagement", "EndUser").objects.create(external_id="m", first_seen_at=now)
    OldSignal = old.get_model("engagement", "Signal")
    for key, source in (("k-1", "api"), ("seg:m-1", "segment")):
        OldSignal.objects.create(user=user, name="x", occurred_at=now, received_at=now, source=source,
                                 idempotency_key=key)

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())

    assert sorted(Signal.objects.values_list("idempotency_key", flat=True)) == ["api:k-1", "seg:m-1"]
    executor = MigrationExecutor(connection)
    executor.migrate([("engagement", "0007_signal_queue")])
    assert sorted(OldSignal.objects.values_list("idempotency_key", flat=True)) == ["k-1", "seg:m-1"]
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
