import json
import shutil
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from engagement.identity import Identifiers
from engagement.imports import import_signals, import_users
from engagement.imports.reader import MAX_LINE_BYTES
from engagement.models import EndUser, ImportRun, Membership, Signal, Tenant
from engagement.people import identify
from engagement.pipeline import process_signals
from tests.factories import EndUserFactory

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
NOW_ARG = ["--now", NOW.isoformat()]
pytestmark = pytest.mark.django_db


def write_lines(path, lines):
    """dicts become JSON; bytes and str are written as they are; one per line."""
    with path.open("wb") as out:
        for line in lines:
            if isinstance(line, dict):
                line = json.dumps(line)
            out.write((line if isinstance(line, bytes) else line.encode()) + b"\n")
    return path


def native(user="u1", name="app.opened", at="2026-02-01T10:00:00Z", **extra):
    return {"user": {"id": user}, "name": name, "occurred_at": at, **extra}


def run(command, path, *args):
    out, err = StringIO(), StringIO()
    call_command(command, str(path), *NOW_ARG, *args, stdout=out, stderr=err)
    return out.getvalue().strip()


def report_lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


# --- signals: native and Segment lines --------------------------------------------


def test_native_lines_are_stored_as_imported_history_that_never_acts(tmp_path):
    path = write_lines(tmp_path / "s.jsonl", [
        native(properties={"plan": "pro"}, tenant="acme", feature="search"),
        native(user="u2", name="report.viewed", item="r1", interaction="view"),
    ])
    assert run("import_signals", path) == "read=2 imported=2 duplicates=0 rejected=0"
    first, second = Signal.objects.order_by("pk")
    assert (first.name, first.source, first.realtime) == ("app.opened", "import", False)
    assert first.properties == {"plan": "pro"}
    assert first.tenant.key == "acme" and first.feature == "search"
    assert first.received_at == NOW
    assert (second.user.external_id, second.item, second.interaction) == ("u2", "r1", "view")
    assert not Signal.objects.filter(realtime=True).exists()


def test_a_two_year_old_line_is_accepted_because_imports_have_no_maximum_age(tmp_path):
    two_years_ago = (NOW - timedelta(days=730)).isoformat()
    path = write_lines(tmp_path / "s.jsonl", [native(at=two_years_ago)])
    assert run("import_signals", path) == "read=1 imported=1 duplicates=0 rejected=0"
    assert Signal.objects.get().occurred_at == NOW - timedelta(days=730)


def test_segment_track_page_and_screen_lines_become_signals_keyed_by_message_id(tmp_path):
    path = write_lines(tmp_path / "s.jsonl", [
        {"type": "track", "userId": "u1", "event": "Order Completed", "messageId": "m-1",
         "timestamp": "2025-06-01T10:00:00Z", "properties": {"total": 12},
         "context": {"groupId": "acme", "library": {"name": "analytics.js"}}},
        {"type": "page", "anonymousId": "a-1", "name": "Pricing", "timestamp": "2025-06-01T10:01:00Z",
         "properties": {"path": "/pricing"}, "channel": "client", "receivedAt": "2025-06-01T10:01:02Z"},
        {"type": "screen", "userId": 42, "name": "Home", "timestamp": "2025-06-01T10:02:00Z"},
    ])
    assert run("import_signals", path) == "read=3 imported=3 duplicates=0 rejected=0"
    track, page, screen = Signal.objects.order_by("occurred_at")
    assert (track.name, track.idempotency_key) == ("Order Completed", "seg:m-1")
    assert track.properties == {"total": 12}
    assert track.tenant.key == "acme" and track.context["library"] == {"name": "analytics.js"}
    assert (page.name, page.user.anonymous_id) == ("$page", "a-1")
    assert page.properties == {"name": "Pricing", "path": "/pricing"}
    assert (screen.name, screen.user.external_id) == ("$screen", "42")
    assert {s.source for s in (track, page, screen)} == {"import"}


def test_a_segment_identify_line_patches_the_user_and_appends_a_historical_identify_signal(tmp_path):
    path = write_lines(tmp_path / "s.jsonl", [
        {"type": "identify", "userId": "u1", "messageId": "m-1", "timestamp": "2024-05-01T00:00:00Z",
         "traits": {"email": "Ada@Example.com", "plan": "pro"},
         "context": {"timezone": "Europe/Paris", "locale": "fr-FR"}},
    ])
    assert run("import_signals", path) == "read=1 imported=1 duplicates=0 rejected=0"
    user = EndUser.objects.get()
    assert (user.external_id, user.email) == ("u1", "ada@example.com")
    assert user.properties == {"email": "Ada@Example.com", "plan": "pro"}
    assert (user.timezone, user.locale) == ("Europe/Paris", "fr-FR")
    assert user.first_seen_at == datetime(2024, 5, 1, tzinfo=UTC)
    signal = Signal.objects.get()
    assert (signal.name, signal.source, signal.realtime) == ("$identify", "system", False)
    assert signal.idempotency_key == "seg:m-1"
    assert signal.properties["properties"] == {"email": "Ada@Example.com", "plan": "pro"}
    assert signal.properties["created"] is True


def test_a_segment_group_line_joins_the_tenant_from_its_timestamp_with_its_traits(tmp_path):
    path = write_lines(tmp_path / "s.jsonl", [
        {"type": "group", "userId": "u1", "groupId": "acme", "timestamp": "2024-05-01T00:00:00Z",
         "traits": {"name": "Acme Inc", "seats": 40}},
    ])
    run("import_signals", path)
    tenant = Tenant.objects.get()
    assert (tenant.key, tenant.name, tenant.traits) == ("acme", "Acme Inc", {"name": "Acme Inc", "seats": 40})
    membership = Membership.objects.get()
    assert membership.joined_at == datetime(2024, 5, 1, tzinfo=UTC)
    assert EndUser.objects.get().primary_tenant == tenant
    signal = Signal.objects.get()
    assert (signal.name, signal.tenant, signal.realtime) == ("$group", tenant, False)


def test_a_segment_alias_line_merges_the_anonymous_visitor_into_the_user(tmp_path):
    path = write_lines(tmp_path / "s.jsonl", [
        {"type": "page", "anonymousId": "anon-1", "name": "Home", "timestamp": "2025-01-01T00:00:00Z"},
        {"type": "alias", "previousId": "anon-1", "userId": "u1", "messageId": "al-1",
         "timestamp": "2025-01-02T00:00:00Z"},
    ])
    assert run("import_signals", path) == "read=2 imported=2 duplicates=0 rejected=0"
    survivor = EndUser.objects.get(deleted_at__isnull=True)
    assert survivor.external_id == "u1"
    assert EndUser.objects.filter(merged_into=survivor).count() == 1
    assert Signal.objects.get(name="$page").user == survivor
    alias = Signal.objects.get(name="$alias")
    assert (alias.idempotency_key, alias.realtime) == ("seg:al-1", False)
    assert alias.occurred_at == datetime(2025, 1, 2, tzinfo=UTC)


def test_an_export_line_the_segment_api_already_received_is_a_duplicate(tmp_path):
    from engagement.segment import receive

    message = {"type": "track", "userId": "u1", "event": "Clicked", "messageId": "live-1",
               "timestamp": NOW.isoformat()}
    receive("track", message, now=NOW, actor="api_key:test")
    path = write_lines(tmp_path / "s.jsonl", [message])
    assert run("import_signals", path) == "read=1 imported=0 duplicates=1 rejected=0"
    assert Signal.objects.get().source == "segment"


def test_an_export_timestamp_is_not_shifted_again_by_its_sent_at(tmp_path):
    path = write_lines(tmp_path / "s.jsonl", [
        {"type": "track", "userId": "u1", "event": "Clicked", "timestamp": "2024-01-01T00:00:00Z",
         "sentAt": "2024-01-01T00:00:05Z", "receivedAt": "2024-01-01T00:00:06Z"},
    ])
    run("import_signals", path)
    assert Signal.objects.get().occurred_at == datetime(2024, 1, 1, tzinfo=UTC)


def test_a_segment_alias_of_an_id_to_itself_stores_nothing(tmp_path):
    path = write_lines(tmp_path / "s.jsonl", [{"type": "alias", "previousId": "u1", "userId": "u1"}])
    assert run("import_signals", path) == "read=1 imported=0 duplicates=1 rejected=0"
    assert not EndUser.objects.exists()


def test_native_and_segment_lines_can_share_a_file(tmp_path):
    path = write_lines(tmp_path / "s.jsonl", [
        native(),
        {"type": "track", "userId": "u1", "event": "Clicked", "timestamp": "2025-01-01T00:00:00Z"},
    ])
    assert run("import_signals", path) == "read=2 imported=2 duplicates=0 rejected=0"
    assert EndUser.objects.count() == 1


# --- idempotency and resume ---------------------------------------------------------------


MIXED = [
    native(),
    native(idempotency_key="own-key"),
    {"type": "track", "userId": "u2", "event": "Clicked", "timestamp": "2025-01-01T00:00:00Z"},
    {"type": "identify", "userId": "u2", "traits": {"plan": "pro"}, "timestamp": "2025-01-01T00:00:00Z"},
    {"type": "group", "userId": "u2", "groupId": "acme", "timestamp": "2025-01-01T00:00:00Z"},
    {"type": "alias", "previousId": "anon-2", "userId": "u2", "timestamp": "2025-01-01T00:00:00Z"},
]


def test_rerunning_an_import_stores_nothing_new_and_counts_every_line_as_a_duplicate(tmp_path):
    path = write_lines(tmp_path / "s.jsonl", MIXED)
    assert run("import_signals", path) == "read=6 imported=6 duplicates=0 rejected=0"
    stored = Signal.objects.count()
    assert run("import_signals", path) == "read=6 imported=0 duplicates=6 rejected=0"
    assert Signal.objects.count() == stored
    assert Membership.objects.count() == 1
    # A native line's own key is stored in the native namespace, as the API stores it.
    assert set(Signal.objects.values_list("idempotency_key", flat=True)) >= {"api:own-key"}


def test_a_copy_of_the_file_elsewhere_is_recognised_line_by_line(tmp_path):
    path = write_lines(tmp_path / "s.jsonl", MIXED)
    run("import_signals", path)
    (tmp_path / "elsewhere").mkdir()
    copy = write_lines(tmp_path / "elsewhere" / "other-name.jsonl", list(reversed(MIXED)))
    assert run("import_signals", copy) == "read=6 imported=0 duplicates=6 rejected=0"


def test_the_same_line_twice_in_one_file_is_stored_once(tmp_path):
    path = write_lines(tmp_path / "s.jsonl", [native(), native()])
    assert run("import_signals", path) == "read=2 imported=1 duplicates=1 rejected=0"


def test_a_rerun_does_not_roll_back_user_properties_changed_since(tmp_path):
    path = write_lines(tmp_path / "s.jsonl", [
        {"type": "identify", "userId": "u1", "traits": {"plan": "free", "email": "old@example.com"},
         "timestamp": "2025-01-01T00:00:00Z"},
    ])
    run("import_signals", path)
    identify(Identifiers(external_id="u1", email="new@example.com"), now=NOW, actor="api_key:test",
             properties={"plan": "pro", "email": None})
    run("import_signals", path)
    user = EndUser.objects.get()
    assert (user.email, user.properties) == ("new@example.com", {"plan": "pro"})


def test_an_interrupted_import_resumes_after_its_last_chunk_and_stores_each_line_once(
    tmp_path, monkeypatch
):
    from engagement.imports import apply

    path = write_lines(tmp_path / "s.jsonl", [native(user=f"u{i}") for i in range(10)] + ["not json"])
    real, calls = apply.ingest_signals, []

    def crash_on_second_chunk(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("power cut")
        return real(*args, **kwargs)

    monkeypatch.setattr(apply, "ingest_signals", crash_on_second_chunk)
    with pytest.raises(CommandError, match="run the same command again to resume"):
        run("import_signals", path, "--chunk-size", "4")
    checkpoint = ImportRun.objects.get()
    assert (checkpoint.status, checkpoint.lines_done, checkpoint.imported) == ("failed", 4, 4)
    assert "power cut" in checkpoint.error
    assert Signal.objects.count() == 4

    monkeypatch.setattr(apply, "ingest_signals", real)
    summary = run("import_signals", path, "--chunk-size", "4")
    assert summary.startswith("read=11 imported=10 duplicates=0 rejected=1 resumed_after_line=4")
    assert ImportRun.objects.get().status == "succeeded"
    assert sorted(Signal.objects.values_list("user__external_id", flat=True)) == sorted(
        f"u{i}" for i in range(10)
    )
    assert [entry["line"] for entry in report_lines(tmp_path / "s.jsonl.rejected.jsonl")] == [11]


def test_a_resumed_import_does_not_report_a_rejection_twice(tmp_path, monkeypatch):
    from engagement.imports.runner import Report

    path = write_lines(tmp_path / "s.jsonl", ["bad 1", native(user="a"), "bad 2", native(user="b")])
    real_flush, flushes = Report.flush, []

    def killed_after_writing_the_second_chunks_rejections(report):
        flushes.append(1)
        if len(flushes) == 2:
            raise KeyboardInterrupt  # killed before the chunk and its checkpoint committed

    monkeypatch.setattr(Report, "flush", killed_after_writing_the_second_chunks_rejections)
    monkeypatch.setattr(Report, "rollback", lambda report: None)  # a hard kill cleans nothing up
    with pytest.raises(KeyboardInterrupt):
        run("import_signals", path, "--chunk-size", "2")
    report = tmp_path / "s.jsonl.rejected.jsonl"
    assert [entry["line"] for entry in report_lines(report)] == [1, 3]
    assert Signal.objects.count() == 1

    monkeypatch.setattr(Report, "flush", real_flush)
    run("import_signals", path, "--chunk-size", "2")
    assert [entry["line"] for entry in report_lines(report)] == [1, 3]
    assert Signal.objects.count() == 2


def test_restart_reads_from_the_first_line_without_storing_anything_twice(tmp_path, monkeypatch):
    from engagement.imports import apply

    path = write_lines(tmp_path / "s.jsonl", [native(user=f"u{i}") for i in range(4)])
    real = apply.ingest_signals
    monkeypatch.setattr(apply, "ingest_signals", lambda items, **kw: (_ for _ in ()).throw(OSError("x"))
                        if items[0].ids.external_id == "u2" else real(items, **kw))
    with pytest.raises(CommandError):
        run("import_signals", path, "--chunk-size", "2")
    monkeypatch.setattr(apply, "ingest_signals", real)
    assert run("import_signals", path, "--restart", "--chunk-size", "2") == (
        "read=4 imported=2 duplicates=2 rejected=0"
    )
    assert Signal.objects.count() == 4
    assert sorted(ImportRun.objects.values_list("status", flat=True)) == ["abandoned", "succeeded"]


def test_a_finished_import_is_read_again_in_full_on_a_rerun(tmp_path):
    path = write_lines(tmp_path / "s.jsonl", [native()])
    run("import_signals", path)
    run("import_signals", path)
    assert list(ImportRun.objects.values_list("status", "read")) == [("succeeded", 1)] * 2


# --- rejections -------------------------------------------------------------------------


def test_rejected_lines_are_reported_with_line_numbers_and_their_neighbours_are_imported(tmp_path):
    path = write_lines(tmp_path / "s.jsonl", [
        native(user="ok1"),
        "{not json",
        {"user": {}, "name": "x"},
        native(user="ok2", surprise=1),
        {"type": "track", "event": "no identity"},
        {"type": "teleport", "userId": "u"},
        native(user="ok3"),
    ])
    summary = run("import_signals", path)
    report = tmp_path / "s.jsonl.rejected.jsonl"
    assert summary == f"read=7 imported=2 duplicates=0 rejected=5 report={report}"
    entries = report_lines(report)
    assert [e["line"] for e in entries] == [2, 3, 4, 5, 6]
    assert "is not valid JSON" in entries[0]["errors"][0]["message"]
    assert entries[1]["errors"] == [
        {"field": "user", "message": "needs at least one of id, anonymous_id, email"}
    ]
    assert entries[2]["errors"] == [{"field": "surprise", "message": "unknown field"}]
    assert entries[3]["errors"] == [{"field": "(line)", "message": "a message needs userId or anonymousId"}]
    assert entries[4]["errors"][0]["message"].startswith("type must be one of")
    assert entries[0]["excerpt"] == "{not json"
    assert sorted(Signal.objects.values_list("user__external_id", flat=True)) == ["ok1", "ok3"]


def test_the_report_goes_where_report_says(tmp_path):
    path = write_lines(tmp_path / "s.jsonl", [native(), "nope"])
    target = tmp_path / "out" / "rejects.jsonl"
    target.parent.mkdir()
    assert run("import_signals", path, "--report", str(target)).endswith(f"report={target}")
    assert report_lines(target)[0]["line"] == 2
    assert not (tmp_path / "s.jsonl.rejected.jsonl").exists()


def test_a_line_whose_identifiers_name_two_different_users_is_rejected_alone(tmp_path):
    EndUserFactory(external_id="u1", email="one@example.com")
    path = write_lines(tmp_path / "s.jsonl", [
        native(user="u5"),
        {"user": {"id": "u2", "email": "one@example.com"}, "name": "x"},
        native(user="u6"),
    ])
    assert run("import_signals", path).startswith("read=3 imported=2 duplicates=0 rejected=1")
    entry = report_lines(tmp_path / "s.jsonl.rejected.jsonl")[0]
    assert entry["line"] == 2 and entry["errors"][0]["field"] == "user"
    assert "different external ids" in entry["errors"][0]["message"]


def test_a_line_from_the_future_is_rejected_because_history_cannot_be(tmp_path):
    path = write_lines(tmp_path / "s.jsonl", [native(at="2026-03-02T00:00:00Z"), native(user="u2")])
    assert run("import_signals", path).startswith("read=2 imported=1 duplicates=0 rejected=1")
    assert "future" in report_lines(tmp_path / "s.jsonl.rejected.jsonl")[0]["errors"][0]["message"]


def test_a_file_where_every_line_is_rejected_exits_non_zero_after_its_summary(tmp_path):
    path = write_lines(tmp_path / "s.jsonl", ["nope", "[1]"])
    out = StringIO()
    with pytest.raises(CommandError, match="every line was rejected"):
        call_command("import_signals", str(path), *NOW_ARG, stdout=out, stderr=StringIO())
    assert out.getvalue().startswith("read=2 imported=0 duplicates=0 rejected=2")


# --- hostile input ------------------------------------------------------------------------


def test_an_empty_file_imports_nothing_and_succeeds(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"")
    assert run("import_signals", path) == "read=0 imported=0 duplicates=0 rejected=0"
    assert not (tmp_path / "empty.jsonl.rejected.jsonl").exists()


def test_blank_lines_are_skipped_and_line_numbers_stay_physical(tmp_path):
    path = write_lines(tmp_path / "s.jsonl", ["", "   ", native(), "\r", "oops", ""])
    assert run("import_signals", path).startswith("read=2 imported=1 duplicates=0 rejected=1")
    assert report_lines(tmp_path / "s.jsonl.rejected.jsonl")[0]["line"] == 5


def test_a_five_megabyte_line_is_rejected_and_the_next_line_imported(tmp_path):
    huge = json.dumps(native(properties={"blob": "x" * (5 * 1024 * 1024)}))
    path = write_lines(tmp_path / "s.jsonl", [huge, native(user="after")])
    assert run("import_signals", path).startswith("read=2 imported=1 duplicates=0 rejected=1")
    entry = report_lines(tmp_path / "s.jsonl.rejected.jsonl")[0]
    assert entry["line"] == 1
    assert entry["errors"][0]["message"].startswith("is too long")
    assert str(MAX_LINE_BYTES) in entry["errors"][0]["message"]
    assert len(entry["excerpt"]) <= 300
    assert Signal.objects.get().user.external_id == "after"


def test_a_huge_last_line_without_a_newline_is_rejected_too(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_bytes(json.dumps(native()).encode() + b"\n" + b"{" * (2 * MAX_LINE_BYTES))
    assert run("import_signals", path).startswith("read=2 imported=1 duplicates=0 rejected=1")


def test_non_utf8_bytes_reject_only_their_own_line(tmp_path):
    path = write_lines(tmp_path / "s.jsonl", [
        native(user="a"), b'{"user": {"id": "\xff\xfe"}, "name": "x"}', native(user="b"),
    ])
    assert run("import_signals", path).startswith("read=3 imported=2 duplicates=0 rejected=1")
    entry = report_lines(tmp_path / "s.jsonl.rejected.jsonl")[0]
    assert entry["line"] == 2 and "not valid UTF-8" in entry["errors"][0]["message"]


def test_deeply_nested_json_is_rejected_without_crashing(tmp_path):
    deep = "[" * 200_000 + "]" * 200_000
    nested: dict = {}
    for _ in range(30):
        nested = {"n": nested}
    path = write_lines(tmp_path / "s.jsonl", [deep, native(properties=nested), native()])
    assert run("import_signals", path).startswith("read=3 imported=1 duplicates=0 rejected=2")
    first, second = report_lines(tmp_path / "s.jsonl.rejected.jsonl")
    assert first["errors"][0]["message"] in ("nests too deeply", "must be a JSON object")
    assert second["errors"][0] == {"field": "properties", "message": "nests deeper than 12 levels"}


def test_values_postgresql_would_refuse_are_rejected_line_by_line(tmp_path):
    path = write_lines(tmp_path / "s.jsonl", [
        '{"user": {"id": "a"}, "name": "x", "properties": {"v": NaN}}',
        '{"user": {"id": "a"}, "name": "x", "properties": {"v": "\\ud800"}}',
        '{"user": {"id": "a"}, "name": "x", "properties": {"v": "\\u0000"}}',
        native(),
    ])
    assert run("import_signals", path).startswith("read=4 imported=1 duplicates=0 rejected=3")
    assert [e["line"] for e in report_lines(tmp_path / "s.jsonl.rejected.jsonl")] == [1, 2, 3]


def test_a_json_array_file_is_refused_with_a_clear_error(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps([native(), native(user="u2")], indent=2))
    with pytest.raises(CommandError, match="looks like a JSON array"):
        run("import_signals", path)
    assert not ImportRun.objects.exists()


def test_a_missing_file_is_a_command_error(tmp_path):
    with pytest.raises(CommandError, match="no such file"):
        run("import_signals", tmp_path / "nope.jsonl")


def test_an_unreadable_file_is_a_command_error(tmp_path):
    path = write_lines(tmp_path / "s.jsonl", [native()])
    path.chmod(0)
    try:
        if path.open("rb"):  # running as root: permissions do not apply
            pytest.skip("the test runs as a user that can read anything")
    except PermissionError:
        pass
    with pytest.raises(CommandError, match="cannot be read"):
        run("import_signals", path)


# --- users --------------------------------------------------------------------------------


def test_a_user_csv_sets_identifiers_properties_timezone_and_memberships(tmp_path):
    path = tmp_path / "users.csv"
    path.write_text(
        "External ID,Email,Timezone,locale,tenants,role,joined_at,plan,Seats\n"
        "u1,Ada@Example.com,Europe/Paris,fr-FR,acme;beta,admin,2023-01-01T00:00:00Z,pro,12\n"
        "u2,,,,acme,,,free,\n"
    )
    assert run("import_users", path) == "read=2 imported=2 duplicates=0 rejected=0"
    ada = EndUser.objects.get(external_id="u1")
    assert (ada.email, ada.timezone, ada.locale) == ("ada@example.com", "Europe/Paris", "fr-FR")
    assert ada.properties == {"plan": "pro", "Seats": "12"}
    memberships = {m.tenant.key: (m.role, m.joined_at) for m in ada.memberships.all()}
    assert memberships == {
        "acme": ("admin", datetime(2023, 1, 1, tzinfo=UTC)),
        "beta": ("admin", datetime(2023, 1, 1, tzinfo=UTC)),
    }
    assert ada.primary_tenant.key == "acme"
    other = EndUser.objects.get(external_id="u2")
    assert other.properties == {"plan": "free"} and other.email is None
    assert other.memberships.get().joined_at == NOW
    identifies = Signal.objects.filter(name="$identify")
    assert identifies.count() == 2
    assert set(identifies.values_list("source", "realtime")) == {("system", False)}


def test_a_user_jsonl_file_takes_the_shape_of_the_users_api(tmp_path):
    path = write_lines(tmp_path / "users.ndjson", [
        {"id": "u1", "email": "a@example.com", "properties": {"plan": "pro", "n": 3},
         "reengagement_opt_out": True,
         "tenants": [{"key": "acme", "name": "Acme", "role": "owner", "joined_at": "2022-01-01T00:00:00Z"}]},
        {"anonymous_id": "anon-1", "properties": {"visits": 1}},
    ])
    assert run("import_users", path) == "read=2 imported=2 duplicates=0 rejected=0"
    user = EndUser.objects.get(external_id="u1")
    assert user.properties == {"plan": "pro", "n": 3} and user.reengagement_opt_out is True
    membership = user.memberships.get()
    assert (membership.tenant.name, membership.role) == ("Acme", "owner")
    assert EndUser.objects.get(anonymous_id="anon-1").properties == {"visits": 1}


def test_properties_of_an_existing_user_are_patched_not_replaced(tmp_path):
    EndUserFactory(external_id="u1", properties={"keep": "me", "plan": "free"})
    path = write_lines(tmp_path / "users.jsonl", [{"id": "u1", "properties": {"plan": "pro"}}])
    run("import_users", path)
    user = EndUser.objects.get()
    assert user.properties == {"keep": "me", "plan": "pro"}
    assert Signal.objects.get().properties["changed"] == ["properties"]


def test_rerunning_a_user_import_changes_nothing(tmp_path):
    path = tmp_path / "users.csv"
    path.write_text("id,email,tenant,plan\nu1,a@example.com,acme,pro\nu2,b@example.com,acme,free\n")
    run("import_users", path)
    before = (Signal.objects.count(), Membership.objects.count(), list(EndUser.objects.values()))
    assert run("import_users", path) == "read=2 imported=0 duplicates=2 rejected=0"
    assert (Signal.objects.count(), Membership.objects.count(), list(EndUser.objects.values())) == before


def test_a_csv_without_an_identifier_column_is_a_command_error(tmp_path):
    path = tmp_path / "users.csv"
    path.write_text("name,plan\nAda,pro\n")
    with pytest.raises(CommandError, match="no identifier column"):
        run("import_users", path)
    assert not EndUser.objects.exists()


def test_csv_rows_without_identifiers_or_with_bad_values_are_rejected_by_line(tmp_path):
    path = tmp_path / "users.csv"
    path.write_bytes(
        b"id,email,timezone,role\n"
        b"u1,a@example.com,,\n"
        b",,Europe/Paris,\n"
        b"u3,not-an-email,,\n"
        b"u4,,Mars/Olympus,\n"
        b"u5,,,admin\n"
        b"u6,\xff,,\n"
        b"u7,,,,surplus\n"
        b",,,\n"
        b"u8,,,\n"
    )
    summary = run("import_users", path)
    assert summary.startswith("read=8 imported=2 duplicates=0 rejected=6")
    entries = report_lines(tmp_path / "users.csv.rejected.jsonl")
    assert [e["line"] for e in entries] == [3, 4, 5, 6, 7, 8]
    assert [e["errors"][0]["field"] for e in entries] == [
        "id", "email", "timezone", "role", "(line)", "(line)"
    ]
    assert set(EndUser.objects.values_list("external_id", flat=True)) == {"u1", "u8"}


def test_an_over_long_or_undecodable_csv_line_is_rejected_and_the_next_row_imported(tmp_path):
    path = tmp_path / "users.csv"
    path.write_bytes(
        b"id,note\n" + b"u1," + b"x" * (2 * MAX_LINE_BYTES) + b"\n" + b"u2,\xff\n" + b"u3,fine\n"
    )
    assert run("import_users", path).startswith("read=3 imported=1 duplicates=0 rejected=2")
    first, second = report_lines(tmp_path / "users.csv.rejected.jsonl")
    assert (first["line"], second["line"]) == (2, 3)
    assert first["errors"][0]["message"].startswith("is too long")
    assert "not valid UTF-8" in second["errors"][0]["message"]
    assert EndUser.objects.get().external_id == "u3"


def test_a_quoted_csv_cell_may_span_lines_and_numbers_stay_physical(tmp_path):
    path = tmp_path / "users.csv"
    path.write_text('id,bio\nu1,"line one\nline two"\nu2,"x"\n,\nu3,ok\n"",""\nbad,"unterminated\n')
    run("import_users", path)
    assert EndUser.objects.get(external_id="u1").properties == {"bio": "line one\nline two"}
    assert EndUser.objects.filter(external_id__in=["u2", "u3", "bad"]).count() == 3


def test_an_excel_csv_with_a_byte_order_mark_and_crlf_lines_is_read(tmp_path):
    path = tmp_path / "users.csv"
    path.write_bytes("\ufeffid,plan\r\nu1,pro\r\n".encode())
    assert run("import_users", path) == "read=1 imported=1 duplicates=0 rejected=0"
    assert EndUser.objects.get().properties == {"plan": "pro"}


def test_the_user_file_format_comes_from_the_extension_unless_format_says_otherwise(tmp_path):
    path = tmp_path / "users.txt"
    path.write_text("id,plan\nu1,pro\n")
    with pytest.raises(CommandError, match="--format"):
        run("import_users", path)
    assert run("import_users", path, "--format", "csv") == "read=1 imported=1 duplicates=0 rejected=0"
    as_json = tmp_path / "users.json"
    shutil.copy(path, as_json)
    with pytest.raises(CommandError, match="every line was rejected"):
        run("import_users", as_json)


def test_a_user_csv_imports_in_bulk_with_far_fewer_queries_than_rows(tmp_path):
    def queries_for(count, name):
        path = tmp_path / name
        rows = "".join(f"{name}-{i},{i}@{name}.example.com,t{i % 3},p{i}\n" for i in range(count))
        path.write_text("id,email,tenant,plan\n" + rows)
        with CaptureQueriesContext(connection) as captured:
            import_users(path, now=NOW)
        return len(captured)

    small, large = queries_for(20, "small.csv"), queries_for(1000, "large.csv")
    assert EndUser.objects.count() == 1020
    assert Membership.objects.count() == 1020
    assert large - small < 1000 / 5  # a per-row loop would cost thousands


def test_imported_identify_signals_do_not_count_as_activity(tmp_path):
    path = write_lines(tmp_path / "users.jsonl", [{"id": "u1"}])
    import_users(path, now=NOW)
    process_signals(now=NOW)
    assert EndUser.objects.get().last_seen_at is None


def test_imported_signals_update_last_seen_once_drained(tmp_path):
    lines = [native(at="2025-01-01T00:00:00Z"), native(at="2025-02-01T00:00:00Z")]
    path = write_lines(tmp_path / "s.jsonl", lines)
    import_signals(path, now=NOW)
    process_signals(now=NOW)
    assert EndUser.objects.get().last_seen_at == datetime(2025, 2, 1, tzinfo=UTC)
