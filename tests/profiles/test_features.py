"""What each shipped feature computes, and what it answers without data (null vs zero)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.apps import apps
from django.db import connection

from campaigns.models import Message
from engagement.models import ItemEngagement, Signal
from profiles import registry
from tests.factories import EndUserFactory

from .helpers import NOW, feedback, signal

pytestmark = pytest.mark.django_db


def compute(name, users, now=NOW):
    feature = registry.get(name)
    return feature.group.run([u.pk for u in users], now)[name]


def test_a_user_without_data_has_zero_counts_and_null_rates():
    user = EndUserFactory()
    answers = {name: f.group.run([user.pk], NOW)[name].get(user.pk)
               for name, f in registry.features().items()}
    assert answers["tip_volume_30d"] == 0
    assert answers["signals_30d"] == 0
    assert answers["active_days_30d"] == 0
    for name in ("completion_rate_30d", "dismiss_rate_30d", "mean_dwell_ms_30d", "preferred_hour",
                 "days_since_last_activity", "message_read_rate_30d", "top_item", "lifecycle_state"):
        assert answers[name] is None, name


def test_tip_features_count_shares_and_mean_dwell_over_the_last_30_days():
    user, other = EndUserFactory(), EndUserFactory()
    for days in (1, 2, 29):
        signal(user, "tip.served", NOW - timedelta(days=days))
    signal(user, "tip.served", NOW - timedelta(days=31))  # outside the window
    feedback(user, NOW - timedelta(hours=1), "completed", dwell_ms=1000)
    feedback(user, NOW - timedelta(hours=2), "completed", dwell_ms="2000")  # not a number: ignored
    feedback(user, NOW - timedelta(hours=3), "dismissed", dwell_ms=2500.5)
    feedback(user, NOW - timedelta(hours=4), "snoozed")
    feedback(other, NOW - timedelta(hours=1), "dismissed")
    answer = registry.get("tip_volume_30d").group.run([user.pk, other.pk], NOW)
    assert answer["tip_volume_30d"] == {user.pk: 3, other.pk: 0}
    assert answer["completion_rate_30d"] == {user.pk: 0.5, other.pk: 0.0}
    assert answer["dismiss_rate_30d"] == {user.pk: 0.25, other.pk: 1.0}
    assert answer["mean_dwell_ms_30d"] == {user.pk: pytest.approx(1750.25)}


def test_feedback_without_a_numeric_dwell_leaves_the_mean_null_but_the_rates_set():
    user = EndUserFactory()
    feedback(user, NOW - timedelta(hours=1), "completed", dwell_ms=True)
    assert compute("mean_dwell_ms_30d", [user]) == {}
    assert compute("completion_rate_30d", [user]) == {user.pk: 1.0}


# (time zone, UTC feedback times, expected local preferred hour)
PREFERRED_HOUR_CASES = [
    ("", ["2026-03-19T09:10", "2026-03-19T09:50", "2026-03-18T17:00"], 9),
    ("Europe/Paris", ["2026-03-19T09:10", "2026-03-18T09:40", "2026-03-18T17:00"], 10),
    ("America/New_York", ["2026-03-19T02:30", "2026-03-18T02:10"], 22),  # the evening before, locally
    ("Asia/Kolkata", ["2026-03-19T20:45", "2026-03-17T20:31"], 2),  # +05:30 crosses midnight
    ("Pacific/Chatham", ["2026-03-19T10:00", "2026-03-17T10:10"], 23),  # +13:45 in March
    # A tie goes to the earliest local hour.
    ("Europe/Paris", ["2026-03-19T15:00", "2026-03-19T08:00"], 9),
    # DST edge: New York springs forward on 2026-03-08 at 07:00 UTC. 06:30 UTC is 01:30 EST
    # and 07:30 UTC is 03:30 EDT; the 2 o'clock hour does not exist that night.
    ("America/New_York", ["2026-03-08T06:30", "2026-03-08T07:30", "2026-03-09T07:30"], 3),
    # Europe falls back on 2025-10-26 at 01:00 UTC: 00:30 and 01:30 UTC are both 02:30 in Paris.
    ("Europe/Paris", ["2025-10-26T00:30", "2025-10-26T01:30", "2025-10-26T05:00"], 2),
]


@pytest.mark.parametrize(("tz", "times", "hour"), PREFERRED_HOUR_CASES)
def test_preferred_hour_is_the_busiest_feedback_hour_in_the_users_own_time_zone(tz, times, hour):
    user = EndUserFactory(timezone=tz)
    latest = max(datetime.fromisoformat(t).replace(tzinfo=UTC) for t in times)
    for text in times:
        feedback(user, datetime.fromisoformat(text).replace(tzinfo=UTC), "completed")
    assert compute("preferred_hour", [user], latest + timedelta(hours=1)) == {user.pk: hour}


def test_preferred_hour_is_computed_per_row_for_users_in_different_zones_at_once():
    at = datetime(2026, 3, 19, 23, 30, tzinfo=UTC)
    users = {tz: EndUserFactory(timezone=tz) for tz in ("", "Asia/Tokyo", "America/Los_Angeles")}
    for user in users.values():
        feedback(user, at, "completed")
    answer = compute("preferred_hour", list(users.values()), at + timedelta(hours=1))
    assert answer == {users[""].pk: 23, users["Asia/Tokyo"].pk: 8, users["America/Los_Angeles"].pk: 16}


def test_active_days_are_counted_in_the_users_time_zone_and_ignore_system_signals():
    tokyo = EndUserFactory(timezone="Asia/Tokyo")
    utc = EndUserFactory()
    # 14:00 and 16:00 UTC on one UTC day are two days in Tokyo (23:00 and 01:00).
    for user in (tokyo, utc):
        signal(user, "app.opened", datetime(2026, 3, 18, 14, 0, tzinfo=UTC))
        signal(user, "app.opened", datetime(2026, 3, 18, 16, 0, tzinfo=UTC))
        signal(user, "$identify", NOW - timedelta(days=5), source=Signal.Source.SYSTEM)
    answer = registry.get("active_days_30d").group.run([tokyo.pk, utc.pk], NOW)
    assert answer["active_days_30d"] == {tokyo.pk: 2, utc.pk: 1}
    assert answer["signals_30d"] == {tokyo.pk: 2, utc.pk: 2}
    assert answer["days_since_last_activity"] == {tokyo.pk: 1, utc.pk: 1}


def test_days_since_last_activity_reaches_past_the_window_and_only_system_signals_are_never_active():
    old, system_only = EndUserFactory(), EndUserFactory()
    signal(old, "app.opened", NOW - timedelta(days=45, hours=1))
    signal(system_only, "$lifecycle.changed", NOW - timedelta(days=1), source=Signal.Source.SYSTEM)
    assert compute("days_since_last_activity", [old, system_only]) == {old.pk: 45}


def _message(user, *, sent_at, read_at=None, channel="in_app", status="sent"):
    from campaigns.models import MessageTemplate, TemplateVersion

    template = MessageTemplate.objects.first() or MessageTemplate.objects.create(
        key="hello", channel="in_app", created_at=NOW, updated_at=NOW)
    version = TemplateVersion.objects.first() or TemplateVersion.objects.create(
        template=template, number=1, category="lifecycle", feature="x", default_locale="en",
        created_by="test", created_at=NOW)
    return Message.objects.create(user=user, template=template, template_version=version, channel=channel,
                                  category="lifecycle", scheduled_for=sent_at, next_attempt_at=sent_at,
                                  status=status, sent_at=sent_at, read_at=read_at, created_at=sent_at)


def test_message_read_rate_divides_reads_by_delivered_in_app_messages():
    user, nothing_delivered = EndUserFactory(), EndUserFactory()
    _message(user, sent_at=NOW - timedelta(days=2), read_at=NOW - timedelta(days=1))
    _message(user, sent_at=NOW - timedelta(days=3))
    _message(user, sent_at=NOW - timedelta(days=4), channel="webhook", read_at=NOW)
    _message(user, sent_at=NOW - timedelta(days=40), read_at=NOW)  # before the window
    _message(nothing_delivered, sent_at=NOW - timedelta(days=1), status="queued")
    assert compute("message_read_rate_30d", [user, nothing_delivered]) == {user.pk: 0.5}


def test_top_item_is_the_highest_score_now_with_ties_to_the_first_name():
    user, tie, nobody = EndUserFactory(), EndUserFactory(), EndUserFactory()

    def engage(u, item, n, days_ago):
        at = NOW - timedelta(days=days_ago)
        ItemEngagement.objects.create(user=u, item=item, interactions=n, first_interaction_at=at,
                                      last_interaction_at=at, scored_at=at)

    engage(user, "OLD-1", 50, 60)  # many interactions, long ago: decayed
    engage(user, "NEW-2", 2, 0)
    engage(tie, "B-1", 3, 1)
    engage(tie, "A-1", 3, 1)
    assert compute("top_item", [user, tie, nobody]) == {user.pk: "NEW-2", tie.pk: "A-1"}


LIFECYCLE = apps.get_model("engagement", "LifecycleState")


def test_lifecycle_state_is_read_from_the_lifecycle_table():
    user, stateless = EndUserFactory(), EndUserFactory()
    LIFECYCLE.objects.create(user=user, state="dormant", last_activity_at=NOW, changed_at=NOW)
    assert compute("lifecycle_state", [user, stateless]) == {user.pk: "dormant"}



@pytest.mark.parametrize("tz", ["", "UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata",
                                "Pacific/Chatham", "Not/AZone"])
def test_the_local_hour_number_gives_the_local_hour_and_day_of_every_row_on_both_databases(tz):
    """The shared pass converts each row once (LocalHourNumber) and derives hour and day from it:
    they must be LocalHour's and LocalDate's, across DST edges and before 1970 too."""
    from datetime import date

    from engagement.models import Signal
    from profiles.local_time import LocalDate, LocalHour, LocalHourNumber

    if tz == "Not/AZone" and connection.vendor == "postgresql":
        pytest.skip("PostgreSQL refuses unknown zone names; they are validated when written")
    user = EndUserFactory(timezone=tz)
    for at in ["2026-03-08T06:59:59.999999", "2026-03-08T07:00", "2025-10-26T00:30", "2025-10-26T01:30",
               "2026-03-19T20:45", "1969-12-31T23:30", "2026-12-31T23:59:59"]:
        signal(user, "app.opened", datetime.fromisoformat(at).replace(tzinfo=UTC))
    rows = (Signal.objects.filter(user=user)
            .annotate(number=LocalHourNumber("occurred_at", "user__timezone"),
                      hour=LocalHour("occurred_at", "user__timezone"),
                      day=LocalDate("occurred_at", "user__timezone"))
            .values_list("number", "hour", "day"))
    for number, hour, day in rows:
        assert (number % 24, date(1970, 1, 1) + timedelta(days=number // 24)) == (
            hour, date.fromisoformat(str(day)))
