"""Closed-loop tuning: calibrations per tenant, their history and rollback, the two weekly jobs."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from engagement.loops import calibration as calibration_module
from engagement.loops.calibration import Learned, Window, get_calibration, rollback, write_calibrations
from engagement.loops.tuning import (
    engagement_rate,
    inactivity_threshold,
    nearest_rank_percentile,
    tune_engagement,
    tune_thresholds,
)
from engagement.models import Calibration, CalibrationHistory, JobRun, Signal
from engagement.scheduler import get_schedule, run_due_jobs
from tests.factories import EndUserFactory, MembershipFactory, TenantFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 2, 5, 30, tzinfo=UTC)  # a Monday


def _signals(rows):
    Signal.objects.bulk_create([
        Signal(user=user, tenant=tenant, name=name, feature=feature, occurred_at=at, received_at=at,
               source=source)
        for user, tenant, name, feature, at, source in rows
    ])


def _engage(tenant, feature, n, at=NOW - timedelta(days=1), user=None):
    user = user or EndUserFactory()
    _signals([(user, tenant, "$engage", feature, at, "system")] * n)


def _window(kind="tune_engagement"):
    return Window(kind, NOW - timedelta(days=30), NOW, 30)


# --- pure rules ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "days", "rate"),
    [(30, 30, 1.0), (1, 30, 0.0333), (2, 3, 0.6667), (0, 30, 0.0), (5, 0, 0.0), (5, -7, 0.0), (-1, 30, 0.0)],
)
def test_the_engagement_rate_is_per_day_to_four_decimals_and_defensive(count, days, rate):
    assert engagement_rate(count, days) == rate


@pytest.mark.parametrize(
    ("histogram", "p90", "threshold"),
    [
        ({1: 54, 12: 6}, 1, 7),          # below the floor: clamped up to 7
        ({10: 40, 40: 10}, 40, 30),      # above the ceiling: clamped down to 30
        ({3: 44, 12: 6}, 12, 12),        # rank 45 of 50 falls on 12
        ({3: 45, 12: 5}, 3, 7),          # rank 45 of 50 is the last 3
        ({9: 49}, 9, None),              # 49 gaps: cold start
        ({}, None, None),
    ],
)
def test_the_threshold_is_the_nearest_rank_p90_clamped_to_7_and_30(histogram, p90, threshold):
    assert nearest_rank_percentile(histogram, 0.9) == p90
    assert inactivity_threshold(histogram) == threshold


# --- calibrations, history, rollback ---------------------------------------------------


def test_a_calibration_is_none_on_a_cold_start_and_its_value_once_learned():
    tenant = TenantFactory()
    assert get_calibration(tenant, "engagement-rate:tips") is None
    write_calibrations([Learned(tenant.pk, "engagement-rate:tips", 0.5, 15)], _window(), now=NOW)
    assert get_calibration(tenant, "engagement-rate:tips") == 0.5
    assert get_calibration(tenant.pk, "engagement-rate:tips") == 0.5


def test_a_calibration_is_updated_in_place_and_every_change_is_in_the_history():
    tenant = TenantFactory()
    for value in (0.5, 0.5, 0.75):
        write_calibrations([Learned(tenant.pk, "k", value, 3)], _window(), now=NOW)
    assert Calibration.objects.count() == 1
    history = list(CalibrationHistory.objects.order_by("pk").values_list("old_value", "new_value", "actor"))
    assert history == [(None, 0.5, "job:tune_engagement"), (0.5, 0.75, "job:tune_engagement")]
    change = CalibrationHistory.objects.order_by("pk").last()
    assert (change.window_start, change.window_end, change.job_kind) == (
        NOW - timedelta(days=30), NOW, "tune_engagement")


def test_a_rollback_restores_the_old_value_and_records_itself():
    tenant = TenantFactory()
    write_calibrations([Learned(tenant.pk, "k", 0.5, 3)], _window(), now=NOW)
    write_calibrations([Learned(tenant.pk, "k", 0.9, 3)], _window(), now=NOW)
    change = CalibrationHistory.objects.get(new_value=0.9)
    undo = rollback(change, actor="staff:ana", now=NOW)
    assert get_calibration(tenant, "k") == 0.5
    assert (undo.old_value, undo.new_value, undo.actor) == (0.9, 0.5, "staff:ana")
    assert undo.rollback_of_id == change.pk
    with pytest.raises(calibration_module.NothingToRollBack):
        rollback(change, actor="staff:ana", now=NOW)


def test_rolling_back_a_creation_returns_the_tenant_to_a_cold_start():
    tenant = TenantFactory()
    write_calibrations([Learned(tenant.pk, "k", 0.5, 3)], _window(), now=NOW)
    rollback(CalibrationHistory.objects.get(), actor="staff:ana", now=NOW)
    assert get_calibration(tenant, "k") is None
    assert CalibrationHistory.objects.filter(old_value=0.5, new_value=None).exists()


def test_a_failing_tenant_is_recorded_and_the_others_still_update(monkeypatch):
    good, bad, other = TenantFactory(), TenantFactory(), TenantFactory()
    real = calibration_module._write

    def fails_for_bad(values, window, now):
        real(values, window, now)
        if any(v.tenant_id == bad.pk for v in values):
            raise RuntimeError("bad tenant")

    monkeypatch.setattr(calibration_module, "_write", fails_for_bad)
    written, failed = write_calibrations(
        [Learned(t.pk, "k", 1.0, 1) for t in (good, bad, other)], _window(), now=NOW
    )
    assert written == {good.pk, other.pk}
    assert failed == {bad.pk: f"tenant #{bad.pk}: RuntimeError"}
    assert get_calibration(bad, "k") is None  # its savepoint was rolled back
    assert get_calibration(good, "k") == get_calibration(other, "k") == 1.0


# --- tune_engagement ------------------------------------------------------------------------


def test_tune_engagement_writes_a_rate_per_tenant_and_feature_of_the_last_30_days():
    a, b = TenantFactory(), TenantFactory()
    _engage(a, "tips", 30)
    _engage(a, "digest", 1)
    _engage(b, "tips", 3)
    _engage(a, "tips", 5, at=NOW - timedelta(days=31))   # outside the window
    _engage(a, "tips", 5, at=NOW)                          # `now` itself is outside [now - 30d, now)
    _engage(a, None, 5)                                    # no feature: nothing to attribute
    result = tune_engagement(None, NOW)
    assert (result.processed, result.succeeded, result.failed) == (2, 2, 0)
    assert get_calibration(a, "engagement-rate:tips") == 1.0
    assert get_calibration(a, "engagement-rate:digest") == 0.0333
    assert get_calibration(b, "engagement-rate:tips") == 0.1
    assert get_calibration(b, "engagement-rate:digest") is None  # no signals: nothing written
    row = Calibration.objects.get(tenant=a, key="engagement-rate:tips")
    assert (row.sample_size, row.window_days, row.computed_at) == (30, 30, NOW)


def test_only_engage_signals_count():
    tenant = TenantFactory()
    user = EndUserFactory()
    _signals([(user, tenant, "feature.used", "tips", NOW - timedelta(days=1), "api")] * 4)
    tune_engagement(None, NOW)
    assert not Calibration.objects.exists()


def test_tuning_is_a_no_op_while_the_loops_are_off(settings):
    settings.LOOPS_ENABLED = False
    tenant = TenantFactory()
    _engage(tenant, "tips", 30)
    _active_days(tenant, users=6, days=12, step=2)
    assert tune_engagement(None, NOW).processed == 0
    assert tune_thresholds(None, NOW).processed == 0
    assert not Calibration.objects.exists() and not CalibrationHistory.objects.exists()


@pytest.mark.parametrize("tenants", [2, 8])
def test_tune_engagement_runs_a_fixed_number_of_queries_whatever_the_tenants(
    tenants, django_assert_max_num_queries
):
    user = EndUserFactory()
    for _ in range(tenants):
        tenant = TenantFactory()
        _engage(tenant, "tips", 3, user=user)
        _engage(tenant, "digest", 2, user=user)
    with django_assert_max_num_queries(6):  # aggregate, savepoint, lock+read, upsert, history, release
        result = tune_engagement(None, NOW)
    assert result.succeeded == tenants


# --- tune_thresholds -------------------------------------------------------------------------


def _active_days(tenant, *, users, days, step, start=NOW - timedelta(days=88)):
    """`users` members of `tenant`, each active on `days` days `step` days apart (several signals a day)."""
    rows = []
    for _ in range(users):
        user = EndUserFactory()
        MembershipFactory(user=user, tenant=tenant)
        for d in range(days):
            at = start + timedelta(days=d * step)
            rows += [(user, tenant, "app.opened", None, at, "api"),
                     (user, None, "issue.viewed", None, at + timedelta(hours=3), "import")]
    _signals(rows)


def test_tune_thresholds_learns_the_p90_of_its_members_gaps():
    tenant = TenantFactory()
    # four users with 10 gaps of 3 days, one with 4 gaps of 3 and 6 of 12: 44 × 3, 6 × 12
    _active_days(tenant, users=4, days=11, step=3)
    user = EndUserFactory()
    MembershipFactory(user=user, tenant=tenant)
    start = NOW - timedelta(days=88)
    offsets = [0, 3, 6, 9, 12] + [12 + 12 * n for n in range(1, 7)]
    _signals([(user, None, "app.opened", None, start + timedelta(days=o, hours=23, minutes=59), "api")
              for o in offsets])
    # Pulse's own signals and signals of non-members are not activity
    _signals([(user, tenant, "$lifecycle.changed", None, start + timedelta(days=1), "system"),
              (user, tenant, "x", None, start + timedelta(days=2), "system"),
              (EndUserFactory(), tenant, "app.opened", None, start + timedelta(days=2), "api")])
    result = tune_thresholds(None, NOW)
    assert (result.succeeded, result.skipped) == (1, 0)
    assert get_calibration(tenant, "inactivity-threshold-days") == 12
    assert Calibration.objects.get(tenant=tenant).sample_size == 50


def test_a_tenant_with_fewer_than_50_gaps_is_a_cold_start_and_others_still_learn():
    cold, warm = TenantFactory(), TenantFactory()
    _active_days(cold, users=7, days=8, step=2)   # 49 gaps
    _active_days(warm, users=5, days=11, step=1)  # 50 gaps of 1 day
    result = tune_thresholds(None, NOW)
    assert (result.processed, result.succeeded, result.skipped) == (2, 1, 1)
    assert get_calibration(cold, "inactivity-threshold-days") is None
    assert get_calibration(warm, "inactivity-threshold-days") == 7


def test_activity_older_than_90_days_is_not_looked_at():
    tenant = TenantFactory()
    _active_days(tenant, users=5, days=11, step=1, start=NOW - timedelta(days=120))
    assert tune_thresholds(None, NOW).succeeded == 0


@pytest.mark.parametrize("tenants", [1, 5])
def test_tune_thresholds_runs_a_fixed_number_of_queries_whatever_the_tenants(
    tenants, django_assert_max_num_queries
):
    for _ in range(tenants):
        _active_days(TenantFactory(), users=5, days=11, step=2)
    with django_assert_max_num_queries(6):
        assert tune_thresholds(None, NOW).succeeded == tenants


# --- as jobs and commands --------------------------------------------------------------------


def test_both_jobs_are_scheduled_on_monday_mornings():
    assert get_schedule("tune_thresholds").latest_window(NOW) == NOW - timedelta(minutes=30)
    assert get_schedule("tune_engagement").latest_window(NOW) == NOW


def test_the_scheduled_run_records_its_run_and_window_in_the_history():
    tenant = TenantFactory()
    _engage(tenant, "tips", 3)
    run = run_due_jobs(NOW, kind="tune_engagement", inline=True)["tune_engagement"]
    assert run.status == "succeeded" and run.succeeded == 1
    change = CalibrationHistory.objects.get()
    assert (change.job_run_id, change.job_kind) == (run.pk, "tune_engagement")
    assert Calibration.objects.get().job_run_id == run.pk


def test_the_command_runs_at_now_even_after_the_scheduler_ran_that_window(capsys):
    tenant = TenantFactory()
    _engage(tenant, "tips", 3)
    run_due_jobs(NOW, kind="tune_engagement", inline=True)["tune_engagement"]
    _engage(tenant, "tips", 27)
    call_command("tune_engagement", "--now", NOW.isoformat())
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "status=succeeded" in out[0] and "succeeded=1" in out[0]
    assert get_calibration(tenant, "engagement-rate:tips") == 1.0
    runs = set(JobRun.objects.values_list("kind", "trigger"))
    assert runs == {("tune_engagement", "schedule"), ("tune_engagement", "manual")}
    call_command("tune_engagement", "--now", NOW.isoformat())  # again: evaluated again, its own run
    assert JobRun.objects.filter(kind="tune_engagement", trigger="manual").count() == 2


def test_the_command_exits_non_zero_when_the_job_fails(monkeypatch):
    def boom(run, now):
        raise RuntimeError("boom")

    monkeypatch.setattr("engagement.loops.tuning.tune_thresholds", boom)
    with pytest.raises(CommandError, match="tune_thresholds failed"):
        call_command("tune_thresholds", "--now", NOW.isoformat())


def test_the_command_refuses_a_bad_now():
    with pytest.raises(CommandError, match="--now"):
        call_command("tune_engagement", "--now", "last tuesday")


# --- the API ---------------------------------------------------------------------------------


def test_calibrations_of_a_tenant_are_listed(api_as):
    tenant = TenantFactory(key="acme")
    write_calibrations([Learned(tenant.pk, "engagement-rate:tips", 0.5, 15),
                        Learned(tenant.pk, "inactivity-threshold-days", 12.0, 80)], _window(), now=NOW)
    body = api_as("read").get_json("/api/v1/calibrations?tenant=acme").json()
    assert body == {"tenant": "acme", "calibrations": [
        {"key": "engagement-rate:tips", "value": 0.5, "sample_size": 15, "window_days": 30,
         "computed_at": NOW.isoformat()},
        {"key": "inactivity-threshold-days", "value": 12.0, "sample_size": 80, "window_days": 30,
         "computed_at": NOW.isoformat()},
    ]}


def test_a_tenant_on_a_cold_start_has_no_calibrations(api_as):
    TenantFactory(key="new")
    assert api_as("read").get_json("/api/v1/calibrations?tenant=new").json() == {
        "tenant": "new", "calibrations": []}


@pytest.mark.parametrize(("query", "status"), [
    ("?tenant=nope", 404), ("", 400), ("?tenant=", 400), ("?tenant=%20", 400),
    ("?tenant=" + "x" * 201, 400), ("?tenant=a%00b", 400),
])
def test_calibrations_refuse_a_missing_bad_or_unknown_tenant(api_as, query, status):
    response = api_as("read").get_json(f"/api/v1/calibrations{query}")
    assert response.status_code == status
    assert "error" in response.json()


@pytest.mark.parametrize("scopes, status", [("ingest", 403), ("send", 403), ("read", 200), ("admin", 200)])
def test_calibrations_need_the_read_scope(api_as, scopes, status):
    TenantFactory(key="acme")
    assert api_as(scopes).get_json("/api/v1/calibrations?tenant=acme").status_code == status


# --- the admin -------------------------------------------------------------------------------


def test_staff_roll_back_one_change_from_the_history_admin(admin_client, admin_user):
    tenant = TenantFactory()
    write_calibrations([Learned(tenant.pk, "k", 0.5, 3)], _window(), now=NOW)
    write_calibrations([Learned(tenant.pk, "k", 0.9, 3)], _window(), now=NOW)
    change = CalibrationHistory.objects.get(new_value=0.9)
    response = admin_client.post(
        "/admin/engagement/calibrationhistory/",
        {"action": "roll_back", "_selected_action": [change.pk]}, follow=True,
    )
    assert response.status_code == 200
    assert get_calibration(tenant, "k") == 0.5
    assert CalibrationHistory.objects.filter(actor=f"staff:{admin_user.username}").count() == 1


def test_the_calibration_admin_pages_show_history_and_job_run_links(admin_client):
    tenant = TenantFactory()
    _engage(tenant, "tips", 3)
    run = run_due_jobs(NOW, kind="tune_engagement", inline=True)["tune_engagement"]
    calibration = Calibration.objects.get()
    page = admin_client.get(f"/admin/engagement/calibration/{calibration.pk}/change/").content.decode()
    assert f"/admin/engagement/jobrun/{run.pk}/change/" in page
    assert "Every change of this calibration" in page
    listing = admin_client.get("/admin/engagement/calibrationhistory/").content.decode()
    assert "engagement-rate:tips" in listing


def test_timezone_now_is_not_what_tuning_compares_against():
    """Time is a parameter: the same signals give the same answer whatever the wall clock."""
    tenant = TenantFactory()
    _engage(tenant, "tips", 30, at=NOW - timedelta(days=400))
    tune_engagement(None, NOW - timedelta(days=390))
    assert get_calibration(tenant, "engagement-rate:tips") == 1.0
    assert timezone.now() > NOW - timedelta(days=390)
