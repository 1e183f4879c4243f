import zoneinfo
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command

from engagement.models import EndUser, Membership, Signal, Tenant

NOW = datetime(2026, 3, 4, 15, 30, tzinfo=UTC)  # a Wednesday
ACTIVITY = ["app.opened", "issue.viewed", "feature.used", "tip.served", "tip.feedback", "search.performed"]


def seed(*args, now=NOW):
    call_command("seed_demo", *args, "--now", now.isoformat(), verbosity=0)


def snapshot():
    """Everything the demo wrote, without database ids."""
    users = [
        (u.external_id, u.anonymous_id, u.email, u.properties, u.timezone, u.locale,
         u.reengagement_opt_out, u.first_seen_at, u.last_seen_at, u.primary_tenant.key)
        for u in EndUser.objects.select_related("primary_tenant").order_by("external_id")
    ]
    tenants = list(Tenant.objects.order_by("key").values_list("key", "name", "traits"))
    memberships = sorted(
        Membership.objects.values_list("user__external_id", "tenant__key", "role", "joined_at")
    )
    signals = sorted(
        demo_signals().values_list(
            "user__external_id", "tenant__key", "name", "occurred_at", "item", "interaction", "feature",
            "idempotency_key", "source",
        ),
        key=repr,
    )
    return users, tenants, memberships, signals


def demo_signals():
    """The signals the demo wrote; not those bucket evaluation derives in its drain (their keys
    name transition ids, see buckets/memberships.py)."""
    return Signal.objects.exclude(actor__startswith="job:buckets").exclude(actor__startswith="bucket:")


def wipe():
    Signal.objects.all().delete()
    Membership.objects.all().delete()
    EndUser.objects.all().delete()
    Tenant.objects.all().delete()


@pytest.mark.django_db
def test_seed_demo_creates_that_many_users_each_with_a_membership_and_properties(capsys):
    seed("--users", "12", "--days", "14", "--seed", "3")
    users = list(EndUser.objects.all())
    assert len(users) == 12
    assert 2 <= Tenant.objects.count() <= 6
    assert all(t.name and t.traits.get("plan") for t in Tenant.objects.all())
    assert not EndUser.objects.filter(memberships__isnull=True).exists()
    for user in users:
        assert {"plan", "role", "signup_source", "country"} <= set(user.properties)
        assert user.timezone and user.locale and user.email and user.primary_tenant_id
    summary = capsys.readouterr().out.strip().splitlines()
    assert len(summary) == 1
    assert summary[0].startswith("seed_demo: 12 users, ")
    assert f"{demo_signals().count()} signals" in summary[0]


@pytest.mark.django_db
def test_seed_demo_goes_through_identify_and_group_and_imports_history():
    seed("--users", "12", "--days", "14", "--seed", "3")
    assert Signal.objects.filter(name="$identify", source="system").count() == 12
    assert Signal.objects.filter(name="$group", source="system").count() == Tenant.objects.count()
    history = Signal.objects.exclude(source="system")
    assert set(history.values_list("source", flat=True)) == {"import"}
    assert not history.filter(realtime=True).exists()
    assert set(ACTIVITY) <= set(history.values_list("name", flat=True))
    assert not Signal.objects.with_state().exclude(state="processed").exists(), "the demo drains the log"


@pytest.mark.django_db
def test_seed_demo_activity_spans_the_day_range_and_fills_last_seen():
    seed("--users", "15", "--days", "14", "--seed", "5")
    history = Signal.objects.filter(source="import")
    times = list(history.values_list("occurred_at", flat=True))
    assert min(times) >= NOW - timedelta(days=14)
    assert max(times) < NOW
    assert len({t.date() for t in times}) >= 12
    active = EndUser.objects.filter(signals__source="import").distinct()
    assert active.count() >= 12
    assert not active.filter(last_seen_at__isnull=True).exists()


@pytest.mark.django_db
def test_seed_demo_lets_some_users_lapse_before_the_end():
    seed("--users", "20", "--days", "21", "--seed", "11")
    last = {
        u.external_id: u.last_seen_at for u in EndUser.objects.filter(last_seen_at__isnull=False)
    }
    lapsed = [ext for ext, seen in last.items() if seen < NOW - timedelta(days=3)]
    recent = [ext for ext, seen in last.items() if seen >= NOW - timedelta(days=2)]
    assert lapsed, "some users stopped showing up days before the end"
    assert len(recent) > len(lapsed)
    for external_id in lapsed:
        assert Signal.objects.filter(user__external_id=external_id, source="import").count() > 0


@pytest.mark.django_db
def test_seed_demo_activity_follows_working_hours_and_weekdays():
    seed("--users", "20", "--days", "28", "--seed", "2")
    per_hour_work = per_day = 0
    weekday, weekend = 0, 0
    rows = Signal.objects.filter(source="import").values_list("occurred_at", "user__timezone")
    for occurred_at, zone in rows:
        local = occurred_at.astimezone(zoneinfo.ZoneInfo(zone))
        per_day += 1
        per_hour_work += 8 <= local.hour < 19
        if local.weekday() >= 5:
            weekend += 1
        else:
            weekday += 1
    assert per_hour_work / per_day > 0.75
    # Four whole weeks: 20 working days against 8 weekend days; per day, weekdays are far busier.
    assert weekday / 20 > 2 * (weekend / 8)


@pytest.mark.django_db
def test_seed_demo_issue_views_carry_items_and_interactions():
    seed("--users", "10", "--days", "10", "--seed", "4")
    views = Signal.objects.filter(name="issue.viewed")
    assert views.exists()
    assert set(views.values_list("interaction", flat=True)) == {"view", "query", "mention"}
    assert all(
        item.split("-")[0].isupper() and item.split("-")[1].isdigit()
        for item in views.values_list("item", flat=True)
    )
    feedback = Signal.objects.filter(name="tip.feedback").first()
    assert {"tip_id", "action", "dwell_ms"} <= set(feedback.properties)


@pytest.mark.django_db
def test_seed_demo_is_deterministic_with_the_same_seed():
    seed("--users", "8", "--days", "7", "--seed", "42")
    first = snapshot()
    wipe()
    seed("--users", "8", "--days", "7", "--seed", "42")
    assert snapshot() == first
    wipe()
    seed("--users", "8", "--days", "7", "--seed", "43")
    assert snapshot() != first


@pytest.mark.django_db
def test_running_the_same_seed_twice_adds_no_duplicate_history():
    seed("--users", "6", "--days", "5", "--seed", "8")
    history = Signal.objects.filter(source="import").count()
    seed("--users", "6", "--days", "5", "--seed", "8")
    assert EndUser.objects.count() == 6
    assert Signal.objects.filter(source="import").count() == history


@pytest.mark.django_db
def test_seed_demo_with_zero_days_creates_users_only():
    seed("--users", "3", "--days", "0")
    assert EndUser.objects.count() == 3
    assert not Signal.objects.exclude(source="system").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["--users", "0"],
        ["--users", "-4"],
        ["--users", "5", "--days", "-1"],
        ["--users", "many"],
        ["--days", "3"],
        ["--users", "5", "--now", "yesterday-ish"],
    ],
)
@pytest.mark.django_db
def test_seed_demo_refuses_bad_arguments_with_a_command_error(args):
    with pytest.raises(CommandError):
        call_command("seed_demo", *args, verbosity=0)
    assert not EndUser.objects.exists()


MAY_ACT: list[bool] = []


def record_may_act(signals, context):
    MAY_ACT.extend(context.may_act(s) for s in signals)


@pytest.mark.django_db
def test_seed_demo_writes_only_history_so_nothing_it_seeds_may_act(settings):
    MAY_ACT.clear()
    settings.PULSE_SIGNAL_HANDLERS = [
        *settings.PULSE_SIGNAL_HANDLERS, "tests.engagement.test_seed_demo.record_may_act",
    ]
    seed("--users", "6", "--days", "3", "--seed", "9")
    assert len(MAY_ACT) == Signal.objects.count() > 6, "every seeded signal went through the drain"
    assert not any(MAY_ACT)
    assert not Signal.objects.filter(realtime=True).exists(), "$identify and $group included"
    assert not EndUser.objects.filter(last_seen_at__isnull=True, signals__source="import").exists()
