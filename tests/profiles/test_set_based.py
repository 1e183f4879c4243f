"""The set-based rebuild: every shipped feature answers the same in SQL as in Python (nulls
included, per-row time zones on both databases), and the rebuild covers exactly its users."""

from datetime import UTC, datetime, timedelta

import pytest
from django.apps import apps
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from campaigns.models import Message, MessageTemplate, TemplateVersion
from engagement.models import EndUser, ItemEngagement, Signal
from profiles import registry
from profiles.models import ProfileFeatureValue
from profiles.refresh import as_columns, rebuild
from profiles.set_refresh import answers_in_sql
from profiles.set_sql import literal
from tests.factories import EndUserFactory

from .helpers import NOW, feedback, signal

pytestmark = pytest.mark.django_db
LIFECYCLE = apps.get_model("engagement", "LifecycleState")
ZONES = ["", "UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata", "Pacific/Chatham", "Asia/Tokyo"]
DAY = 86400
WINDOW_EDGES = [0, 1, DAY - 1, DAY, 30 * DAY - 1, 30 * DAY, 30 * DAY + 1, 45 * DAY, -1]


def python_answers(user_ids, now=NOW) -> dict[tuple[int, str], tuple]:
    found = {}
    for group in registry.groups():
        answer = group.run(user_ids, now)
        for feature in group.features:
            for uid in user_ids:
                found[(uid, feature.name)] = as_columns(feature, answer[feature.name].get(uid))
    return found


def sql_answers(user_ids, now=NOW) -> dict[tuple[int, str], tuple]:
    found = {}
    for group in registry.groups():
        rows = answers_in_sql(group, user_ids, now)
        assert len(rows) == len(user_ids) * len(group.features), group.name  # one row per pair
        found.update({(uid, name): (value, text) for uid, name, value, text in rows})
    return found


def assert_agree(python: dict, sql: dict) -> None:
    assert python.keys() == sql.keys()
    for pair, (value, text) in python.items():
        sql_value, sql_text = sql[pair]
        assert sql_text == text, pair
        assert (sql_value is None) == (value is None), (pair, value, sql_value)
        if value is not None:
            assert sql_value == pytest.approx(value, rel=1e-9, abs=1e-9), pair


seconds_ago = st.one_of(st.integers(-2 * DAY, 45 * DAY), st.sampled_from(WINDOW_EDGES))
properties = st.fixed_dictionaries({}, optional={
    "action": st.sampled_from(["completed", "dismissed", "snoozed", "", 1, True, None]),
    "dwell_ms": st.one_of(st.integers(-10**6, 10**9), st.floats(-1e6, 1e9, allow_nan=False),
                          st.sampled_from(["2000", True, None, [1]])),
})
signals = st.lists(st.tuples(
    st.integers(0, 3),
    st.sampled_from(["tip.served", "tip.feedback", "app.opened", "$page", "$identify", "$lifecycle.changed"]),
    st.sampled_from([s.value for s in Signal.Source]),
    seconds_ago, st.integers(0, 999_999), properties,
), max_size=25)
messages = st.lists(st.tuples(st.integers(0, 3), seconds_ago, st.one_of(st.none(), seconds_ago),
                              st.sampled_from(["in_app", "webhook"]), st.sampled_from(["sent", "queued"])),
                    max_size=6)
items = st.lists(st.tuples(st.integers(0, 3), st.sampled_from(["A-1", "B-2", "C-3"]), st.integers(1, 9),
                           st.integers(0, 90)), max_size=6)
states = st.lists(st.one_of(st.none(), st.sampled_from([s.value for s in LIFECYCLE.State])),
                  min_size=4, max_size=4)


def build(zones, signal_rows, message_rows, item_rows, state_rows) -> list[int]:
    users = [EndUserFactory(timezone=tz) for tz in zones]
    at = lambda seconds, micro=0: NOW - timedelta(seconds=seconds, microseconds=micro)  # noqa: E731
    Signal.objects.bulk_create([
        Signal(user=users[i % len(users)], name=name, source=source, occurred_at=at(ago, micro),
               received_at=NOW, properties=props)
        for i, name, source, ago, micro, props in signal_rows
    ])
    template = MessageTemplate.objects.create(key="t", channel="in_app", created_at=NOW, updated_at=NOW)
    version = TemplateVersion.objects.create(template=template, number=1, category="lifecycle", feature="x",
                                             default_locale="en", created_by="test", created_at=NOW)
    for i, sent, read, channel, status in message_rows:
        Message.objects.create(user=users[i % len(users)], template=template, template_version=version,
                               channel=channel, category="lifecycle", scheduled_for=at(sent),
                               next_attempt_at=at(sent), status=status, sent_at=at(sent),
                               read_at=None if read is None else at(read), created_at=at(sent))
    seen = set()
    for i, item, count, days in item_rows:
        user = users[i % len(users)]
        if (user.pk, item) not in seen:
            seen.add((user.pk, item))
            last = NOW - timedelta(days=days)
            ItemEngagement.objects.create(user=user, item=item, interactions=count, first_interaction_at=last,
                                          last_interaction_at=last, scored_at=last)
    for user, state in zip(users, state_rows, strict=False):
        if state:
            LIFECYCLE.objects.create(user=user, state=state, last_activity_at=NOW, changed_at=NOW)
    return [u.pk for u in users]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(zones=st.lists(st.sampled_from(ZONES), min_size=1, max_size=4), signal_rows=signals,
       message_rows=messages, item_rows=items, state_rows=states)
def test_the_sql_form_and_the_python_compute_agree_for_every_shipped_feature(
        zones, signal_rows, message_rows, item_rows, state_rows):
    with transaction.atomic():
        ids = build(zones, signal_rows, message_rows, item_rows, state_rows)
        assert_agree(python_answers(ids), sql_answers(ids))
        transaction.set_rollback(True)


# The time zone cases of test_features, through the SQL form: per row, across DST edges.
@pytest.mark.parametrize(("tz", "times"), [
    ("America/New_York", ["2026-03-08T06:30", "2026-03-08T07:30", "2026-03-09T07:30"]),
    ("Europe/Paris", ["2025-10-26T00:30", "2025-10-26T01:30", "2025-10-26T05:00"]),
    ("Asia/Kolkata", ["2026-03-19T20:45", "2026-03-17T20:31"]),
    ("Pacific/Chatham", ["2026-03-19T10:00", "2026-03-17T10:10"]),
])
def test_the_sql_form_counts_local_hours_and_days_in_each_users_own_time_zone(tz, times):
    user, utc = EndUserFactory(timezone=tz), EndUserFactory()
    moments = [datetime.fromisoformat(t).replace(tzinfo=UTC) for t in times]
    for person in (user, utc):
        for moment in moments:
            feedback(person, moment, "completed")
    now = max(moments) + timedelta(hours=1)
    python, sql = python_answers([user.pk, utc.pk], now), sql_answers([user.pk, utc.pk], now)
    assert_agree(python, sql)
    assert sql[(user.pk, "preferred_hour")] != (None, None)


def test_every_shipped_group_declares_its_sql_form():
    assert [g.name for g in registry.groups() if g.sql is None] == []


def test_a_user_without_data_gets_a_stored_row_per_feature_with_zero_counts_and_nulls():
    quiet = EndUserFactory()
    answers = sql_answers([quiet.pk])
    assert answers[(quiet.pk, "tip_volume_30d")] == (0, None)
    assert answers[(quiet.pk, "signals_30d")] == (0, None)
    assert answers[(quiet.pk, "active_days_30d")] == (0, None)
    nulls = set(registry.features()) - {"tip_volume_30d", "signals_30d", "active_days_30d"}
    assert {name for (_, name), answer in answers.items() if answer == (None, None)} == nulls
    rebuild(EndUser.objects.all(), NOW)
    rows = ProfileFeatureValue.objects.filter(user=quiet)
    assert rows.count() == len(registry.features())
    assert all(row.computed_at == NOW for row in rows)  # computed nulls are stored, not left absent


def test_a_set_based_rebuild_stores_what_the_python_path_stores():
    users = [EndUserFactory(timezone=tz) for tz in ("", "Asia/Tokyo", "America/New_York")]
    for days, user in enumerate(users):
        signal(user, "tip.served", NOW - timedelta(days=days, hours=3))
        feedback(user, NOW - timedelta(hours=days * 7), "dismissed", dwell_ms=1000 + days)
        signal(user, "app.opened", NOW - timedelta(days=40 + days))

    def stored():
        return {(r.user_id, r.name): (r.value, r.value_text, r.computed_at)
                for r in ProfileFeatureValue.objects.all()}

    rebuild(EndUser.objects.all(), NOW, set_based=False)
    by_python = stored()
    ProfileFeatureValue.objects.all().delete()
    result = rebuild(EndUser.objects.all(), NOW, range_size=2, batch_size=1)
    assert stored() == by_python
    assert (result.users, result.computed, result.written, result.refused) == (3, len(by_python),
                                                                                len(by_python), 0)


def test_ranges_and_write_chunks_cover_exactly_the_users_of_the_queryset():
    users = [EndUserFactory() for _ in range(5)]
    EndUser.objects.filter(pk=users[2].pk).update(deleted_at=NOW)  # inside a range, outside the queryset
    seen = []
    rebuild(EndUser.objects.filter(deleted_at__isnull=True), NOW, range_size=2, batch_size=1,
            progress=lambda done: seen.append(done.users))
    stored = set(ProfileFeatureValue.objects.values_list("user_id", flat=True))
    assert stored == {u.pk for u in users} - {users[2].pk}
    assert seen == [1, 1, 1, 1]


def test_stale_only_recomputes_only_missing_or_expired_pairs():
    fresh, old, never = EndUserFactory(), EndUserFactory(), EndUserFactory()
    rebuild(EndUser.objects.filter(pk=fresh.pk), NOW - timedelta(minutes=10))
    rebuild(EndUser.objects.filter(pk=old.pk), NOW - timedelta(hours=1))  # expires exactly at NOW
    result = rebuild(EndUser.objects.all(), NOW, stale_only=True)
    when = dict(ProfileFeatureValue.objects.filter(name="signals_30d").values_list("user_id", "computed_at"))
    assert when == {fresh.pk: NOW - timedelta(minutes=10), old.pk: NOW, never.pk: NOW}
    assert result.written == 2 * len(registry.features())


def test_one_feature_rebuilds_only_that_feature():
    user = EndUserFactory()
    rebuild(EndUser.objects.all(), NOW, features=["preferred_hour"])
    assert list(ProfileFeatureValue.objects.filter(user=user).values_list("name", flat=True)) == [
        "preferred_hour"]


SHIPPED = ["profiles.features.tips", "profiles.features.activity", "profiles.features.messages",
           "profiles.features.items", "profiles.features.lifecycle"]


def test_a_group_without_sql_goes_through_python_and_a_failing_sql_group_is_reported(settings):
    settings.PULSE_PROFILE_FEATURE_MODULES = [*SHIPPED, "tests.profiles.set_declarations"]
    users = [EndUserFactory() for _ in range(3)]
    result = rebuild(EndUser.objects.all(), NOW, batch_size=2)
    assert result.failed_groups == ["broken_in_sql"]
    sevens = dict(ProfileFeatureValue.objects.filter(name="python_only_seven")
                  .values_list("user_id", "value"))
    assert sevens == {u.pk: 7 for u in users}
    assert not ProfileFeatureValue.objects.filter(name="broken_in_sql").exists()
    assert ProfileFeatureValue.objects.filter(name="tip_volume_30d").count() == 3


@pytest.mark.parametrize("name", ["Tip", "x'; DROP TABLE t; --", "", "a b", None, "é"])
def test_a_malformed_feature_name_never_reaches_the_sql(name):
    with pytest.raises(ValueError, match="not a feature name"):
        literal(name)


@pytest.mark.parametrize("name", ["Window", "x; DROP TABLE t", "", "a b", "1abc", "a" * 64])
def test_a_malformed_shared_relation_name_is_refused_at_declaration(name):
    with pytest.raises(ValueError, match="not a relation name"):
        registry.shared_sql(name)


def test_the_tip_and_activity_groups_share_one_pass_over_the_window_per_range(monkeypatch):
    from profiles import set_refresh

    users = [EndUserFactory() for _ in range(5)]
    for user in users:
        feedback(user, NOW - timedelta(hours=2), "completed")
    readers = {g.name for g in registry.groups() for r in g.reads if r.name == "profile_signal_window"}
    assert readers == {"tips", "activity"}
    calls = []
    original = set_refresh.stage_shared
    monkeypatch.setattr(set_refresh, "stage_shared",
                        lambda relation, *rest: calls.append(relation.name) or original(relation, *rest))
    result = rebuild(EndUser.objects.all(), NOW, range_size=2)
    assert calls == ["profile_signal_window"] * 3  # ranges of 2, 2 and 1 users
    assert result.written == 5 * len(registry.features())
    rates = ProfileFeatureValue.objects.filter(name="completion_rate_30d").values_list("value", flat=True)
    assert set(rates) == {1.0}


def test_a_failing_shared_pass_fails_the_groups_reading_it_and_only_those(monkeypatch):
    from profiles.features import signal_window

    EndUserFactory()
    monkeypatch.setattr(signal_window, "_fence", lambda: "OFFSET 'nonsense'")  # the statement fails
    result = rebuild(EndUser.objects.all(), NOW)
    assert sorted(result.failed_groups) == ["activity", "tips"]
    assert set(ProfileFeatureValue.objects.values_list("name", flat=True)) == {
        "message_read_rate_30d", "top_item", "lifecycle_state"}


def test_a_users_values_go_with_the_user_without_a_database_foreign_key():
    user, other = EndUserFactory(), EndUserFactory()
    rebuild(EndUser.objects.all(), NOW)
    user.delete()
    assert set(ProfileFeatureValue.objects.values_list("user_id", flat=True)) == {other.pk}
