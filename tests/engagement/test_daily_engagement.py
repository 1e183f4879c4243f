"""The daily engagement job: the seed's cases, skips, thresholds, failure isolation, bounded queries."""

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from campaigns.models import Preference
from engagement.loops.daily_engagement import run_daily_engagement
from engagement.models import JobRun, LifecycleState, LifecycleTransition, Tenant
from engagement.scheduler import get_schedule, run_due_jobs
from tests.engagement.lifecycle_helpers import (
    NOW,
    S,
    changed_signals,
    goodbye_sent,
    lifecycle_messages,
    state_of,
    user_in,
)
from tests.factories import EndUserFactory, TenantFactory

pytestmark = pytest.mark.django_db
DAY = timedelta(days=1)


# --- the seed's list --------------------------------------------------------


def test_a_user_13_days_inactive_is_left_alone():
    user = user_in(inactive=13 * DAY)
    result = run_daily_engagement(NOW)
    assert state_of(user) == S.ACTIVE and not lifecycle_messages().exists()
    assert (result.processed, result.succeeded) == (0, 0)


def test_a_user_14_days_inactive_gets_the_goodbye_and_its_message():
    user = user_in(inactive=14 * DAY)
    result = run_daily_engagement(NOW)
    state = LifecycleState.objects.get(user=user)
    assert state.state == S.GOODBYE_SENT
    assert state.goodbye_sent_at == NOW and state.goodbye_expires_at == NOW + timedelta(hours=48)
    message = lifecycle_messages(user).get()
    assert message.template.key == "engagement.goodbye.self_select"
    assert message.idempotency_key == f"{user.pk}:goodbye_sent:2026-05-04"
    assert (result.processed, result.succeeded, result.failed, result.skipped) == (1, 1, 0, 0)
    transition = LifecycleTransition.objects.get(user=user)
    assert (transition.from_state, transition.to_state, transition.trigger, transition.actor) == (
        "active", "goodbye_sent", "inactivity_14d", "job:daily_engagement")
    signal = changed_signals(user).get()
    assert signal.properties == {"from": "active", "to": "goodbye_sent", "trigger": "inactivity_14d"}
    assert signal.actor == "job:daily_engagement" and signal.source == "system"


def test_a_rerun_at_the_same_now_changes_nothing_and_queues_no_duplicate():
    users = [user_in(inactive=15 * DAY) for _ in range(3)] + [goodbye_sent(ago=timedelta(hours=50))]
    run_daily_engagement(NOW)
    before = (lifecycle_messages().count(), LifecycleTransition.objects.count(), changed_signals().count())
    again = run_daily_engagement(NOW)
    assert (lifecycle_messages().count(), LifecycleTransition.objects.count(),
            changed_signals().count()) == before == (3, 4, 4)
    assert again.processed == 0
    assert [state_of(u) for u in users] == [S.GOODBYE_SENT] * 3 + [S.DORMANT]


def test_a_goodbye_queued_earlier_the_same_day_is_not_queued_twice():
    """Active again after the morning's goodbye, inactive again by a later manual run: the day's
    message key already exists, so no second message."""
    user = user_in(inactive=20 * DAY)
    run_daily_engagement(NOW)
    LifecycleState.objects.filter(user=user).update(state=S.ACTIVE)
    run_daily_engagement(NOW + timedelta(hours=5))
    assert lifecycle_messages(user).count() == 1
    assert state_of(user) == S.GOODBYE_SENT


def test_an_opted_out_user_is_skipped_and_untouched():
    user = user_in(inactive=30 * DAY)
    user.reengagement_opt_out = True
    user.save()
    result = run_daily_engagement(NOW)
    assert state_of(user) == S.ACTIVE and not lifecycle_messages().exists()
    assert (result.skipped, result.succeeded, result.processed) == (1, 0, 1)
    assert not LifecycleTransition.objects.exists()


@pytest.mark.parametrize("preference", [
    {"unsubscribed_all": True},
    {"categories": {"lifecycle": False}},
])
def test_a_user_the_gate_would_drop_the_goodbye_for_is_skipped(preference, now):
    user = user_in(inactive=30 * DAY)
    Preference.objects.create(user=user, updated_at=now, **preference)
    result = run_daily_engagement(NOW)
    assert state_of(user) == S.ACTIVE and result.skipped == 1 and not lifecycle_messages().exists()


def test_a_marketing_opt_out_does_not_stop_the_goodbye(now):
    user = user_in(inactive=30 * DAY)
    Preference.objects.create(user=user, updated_at=now, categories={"marketing": False, "lifecycle": True})
    assert run_daily_engagement(NOW).succeeded == 1
    assert state_of(user) == S.GOODBYE_SENT


def test_a_goodbye_47_hours_old_is_left_alone():
    user = goodbye_sent(ago=timedelta(hours=47))
    run_daily_engagement(NOW)
    assert state_of(user) == S.GOODBYE_SENT


def test_a_goodbye_exactly_48_hours_old_goes_dormant_without_a_message():
    user = goodbye_sent(ago=timedelta(hours=48))
    result = run_daily_engagement(NOW)
    assert state_of(user) == S.DORMANT and result.succeeded == 1
    assert not lifecycle_messages().exists()
    assert LifecycleTransition.objects.get(user=user).trigger == "goodbye_timeout"


def test_a_help_flow_past_its_48_hours_goes_dormant_and_one_within_them_stays():
    due = user_in(S.HELP_FLOW, help_expires_at=NOW)
    open_ = user_in(S.HELP_FLOW, help_expires_at=NOW + timedelta(seconds=1))
    run_daily_engagement(NOW)
    assert (state_of(due), state_of(open_)) == (S.DORMANT, S.HELP_FLOW)
    assert not lifecycle_messages().exists()


def test_a_due_reminder_goes_dormant_and_a_later_one_waits():
    due = user_in(S.REMIND_LATER, remind_at=NOW - timedelta(minutes=1))
    later = user_in(S.REMIND_LATER, remind_at=NOW + DAY)
    run_daily_engagement(NOW)
    assert (state_of(due), state_of(later)) == (S.DORMANT, S.REMIND_LATER)
    assert LifecycleTransition.objects.get(user=due).trigger == "reminder_due"


def failing_outbox(rows, *, now):
    from campaigns.outbox import queue_messages
    from engagement.outbox_port import MessageSet

    user_ids = rows.user_ids if isinstance(rows, MessageSet) else [row["user_id"] for row in rows]
    if FAILING[0] in user_ids:
        raise ValueError("this user's message cannot be queued")
    return queue_messages(rows, now=now)


FAILING = [0]


def test_one_failing_user_is_recorded_and_every_other_user_still_moves(settings):
    users = [user_in(inactive=20 * DAY) for _ in range(5)]
    FAILING[0] = users[2].pk
    settings.PULSE_OUTBOX = "tests.engagement.test_daily_engagement.failing_outbox"
    settings.PULSE_LIFECYCLE_CHUNK_SIZE = 2
    result = run_daily_engagement(NOW)
    assert [state_of(u) for u in users] == [S.GOODBYE_SENT] * 2 + [S.ACTIVE] + [S.GOODBYE_SENT] * 2
    assert (result.succeeded, result.failed, result.processed) == (4, 1, 5)
    assert result.errors == [{"user_id": users[2].pk, "check": "inactivity_14d",
                              "error": "ValueError: this user's message cannot be queued"}]
    assert not LifecycleTransition.objects.filter(user=users[2]).exists(), "its chunk rolled back"
    assert lifecycle_messages().count() == 4


# --- the race, thresholds, loops ---------------------------------------------


def test_a_user_who_became_active_before_the_update_is_not_touched():
    """The UPDATE repeats the rule, so a row that changed after it was picked is re-checked."""
    from engagement.loops import daily_engagement

    user = user_in(inactive=20 * DAY)
    original = daily_engagement._chunk_bound

    def bound_then_activity(*args):
        LifecycleState.objects.filter(user=user).update(last_activity_at=NOW - timedelta(minutes=5))
        return original(*args)

    daily_engagement._chunk_bound = bound_then_activity
    try:
        result = run_daily_engagement(NOW)
    finally:
        daily_engagement._chunk_bound = original
    assert state_of(user) == S.ACTIVE and result.succeeded == 0 and not lifecycle_messages().exists()


def tenant_thresholds(key):
    """A calibration lookup for tests: a tenant's trait `inactivity_days`."""
    from django.db.models import F, FloatField
    from django.db.models.fields.json import KT
    from django.db.models.functions import Cast

    return Tenant.objects.filter(traits__has_key="inactivity_days").annotate(
        tenant_id=F("pk"), days=Cast(KT("traits__inactivity_days"), FloatField()))


def test_a_tenants_calibrated_threshold_replaces_the_setting_for_its_users(settings):
    settings.PULSE_CALIBRATION_LOOKUP = "tests.engagement.test_daily_engagement.tenant_thresholds"
    quick = TenantFactory(traits={"inactivity_days": 7})
    slow = TenantFactory(traits={"inactivity_days": 30.5})
    plain = TenantFactory()
    at = {
        "quick_8": user_in(inactive=8 * DAY, user=EndUserFactory(primary_tenant=quick)),
        "quick_6": user_in(inactive=6 * DAY, user=EndUserFactory(primary_tenant=quick)),
        "slow_20": user_in(inactive=20 * DAY, user=EndUserFactory(primary_tenant=slow)),
        "slow_boundary": user_in(inactive=timedelta(days=30.5), user=EndUserFactory(primary_tenant=slow)),
        "plain_14": user_in(inactive=14 * DAY, user=EndUserFactory(primary_tenant=plain)),
        "none_14": user_in(inactive=14 * DAY),
        "none_13": user_in(inactive=13 * DAY),
    }
    run_daily_engagement(NOW)
    moved = {name for name, user in at.items() if state_of(user) == S.GOODBYE_SENT}
    assert moved == {"quick_8", "slow_boundary", "plain_14", "none_14"}


def test_with_the_loops_off_the_setting_applies_to_every_tenant(settings):
    settings.PULSE_CALIBRATION_LOOKUP = "tests.engagement.test_daily_engagement.tenant_thresholds"
    settings.LOOPS_ENABLED = False
    quick = TenantFactory(traits={"inactivity_days": 7})
    user = user_in(inactive=8 * DAY, user=EndUserFactory(primary_tenant=quick))
    run_daily_engagement(NOW)
    assert state_of(user) == S.ACTIVE


def test_the_threshold_setting_is_read_in_days(settings):
    settings.PULSE_INACTIVITY_DAYS = 3
    user = user_in(inactive=3 * DAY)
    run_daily_engagement(NOW)
    assert state_of(user) == S.GOODBYE_SENT


def test_the_default_lookup_reads_the_thresholds_tuning_wrote_into_calibrations():
    """The shipped PULSE_CALIBRATION_LOOKUP against the real table tune_thresholds writes."""
    from engagement.models import Calibration

    quick, plain = TenantFactory(), TenantFactory()
    Calibration.objects.create(tenant=quick, key="inactivity-threshold-days", value=7, sample_size=80,
                               window_days=90, computed_at=NOW)
    Calibration.objects.create(tenant=plain, key="engagement-rate:tips", value=7, sample_size=80,
                               window_days=30, computed_at=NOW)
    at = {
        "quick_8": user_in(inactive=8 * DAY, user=EndUserFactory(primary_tenant=quick)),
        "plain_8": user_in(inactive=8 * DAY, user=EndUserFactory(primary_tenant=plain)),
        "plain_14": user_in(inactive=14 * DAY, user=EndUserFactory(primary_tenant=plain)),
    }
    run_daily_engagement(NOW)
    moved = {name for name, user in at.items() if state_of(user) == S.GOODBYE_SENT}
    assert moved == {"quick_8", "plain_14"}


# --- bounded work ---------------------------------------------------------------


def populate(n):
    for _ in range(n):
        user_in(inactive=20 * DAY)
        goodbye_sent(ago=timedelta(hours=49))
        user_in(S.HELP_FLOW, help_expires_at=NOW - DAY)
        user_in(S.REMIND_LATER, remind_at=NOW - DAY)
        skipped = user_in(inactive=20 * DAY)
        skipped.reengagement_opt_out = True
        skipped.save()


def queries_for_a_run() -> int:
    with CaptureQueriesContext(connection) as queries:
        result = run_daily_engagement(NOW)
    assert result.failed == 0
    return len(queries.captured_queries)


def test_the_jobs_query_count_does_not_grow_with_the_number_of_users(settings):
    settings.PULSE_LIFECYCLE_CHUNK_SIZE = 1000
    populate(3)
    small = queries_for_a_run()
    LifecycleState.objects.all().delete()
    populate(40)
    large = queries_for_a_run()
    assert small == large, (small, large)


def test_chunks_cost_a_fixed_number_of_queries_each(settings, django_assert_max_num_queries):
    settings.PULSE_LIFECYCLE_CHUNK_SIZE = 5
    populate(10)  # 20 active (10 due, 10 skipped): 5 chunks (the last one open-ended); 3 per other state
    # bound, update, transitions, signals (2: insert, queue), messages (2: template, insert), count,
    # two savepoints and their releases; the moves are sets, so nothing here grows with the chunk
    chunks, per_chunk = 5 + 3 * 3, 12
    with django_assert_max_num_queries(chunks * per_chunk):
        run_daily_engagement(NOW)
    assert not LifecycleState.objects.filter(state__in=[S.HELP_FLOW, S.REMIND_LATER]).exists()


# --- the schedule, job runs and the command -------------------------------------------


def test_the_job_is_scheduled_daily_at_six_utc():
    schedule = get_schedule("daily_engagement")
    assert schedule.cron == "0 6 * * *" and schedule.queue in ("default", "sweeps")
    assert schedule.latest_window(NOW + timedelta(hours=3)) == NOW


def test_the_scheduled_run_stores_its_counts_on_the_job_run():
    user_in(inactive=20 * DAY)
    run = run_due_jobs(NOW, kind="daily_engagement", inline=True)["daily_engagement"]
    assert (run.status, run.processed, run.succeeded, run.as_of) == ("succeeded", 1, 1, NOW)
    transition = LifecycleTransition.objects.get()
    assert (transition.job_run_id, transition.job_kind, transition.job_window) == (run.pk, "daily_engagement",
                                                                                    run.window)


def test_a_pruned_run_leaves_its_kind_and_window_on_the_transition():
    user_in(inactive=20 * DAY)
    run = run_due_jobs(NOW, kind="daily_engagement", inline=True)["daily_engagement"]
    JobRun.objects.filter(pk=run.pk).delete()
    transition = LifecycleTransition.objects.get()
    assert (transition.job_run_id, transition.job_kind, transition.job_window) == (None, "daily_engagement",
                                                                                    NOW)


def test_the_command_runs_at_now_after_the_scheduler_and_prints_one_line(capsys):
    run_due_jobs(NOW, kind="daily_engagement", inline=True)
    user = user_in(inactive=20 * DAY)
    call_command("run_daily_engagement", "--now", NOW.isoformat())
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "trigger=manual" in out[0] and "succeeded=1" in out[0]
    assert state_of(user) == S.GOODBYE_SENT
    assert JobRun.objects.filter(kind="daily_engagement").count() == 2


def test_the_command_exits_non_zero_when_the_run_failed(settings):
    user = user_in(inactive=20 * DAY)
    FAILING[0] = user.pk
    settings.PULSE_OUTBOX = "tests.engagement.test_daily_engagement.failing_outbox"
    with pytest.raises(CommandError, match="daily_engagement failed: user_id="):
        call_command("run_daily_engagement", "--now", NOW.isoformat())
    assert JobRun.objects.get(kind="daily_engagement").status == "failed"


def test_the_command_refuses_a_malformed_now():
    with pytest.raises(CommandError, match="--now"):
        call_command("run_daily_engagement", "--now", "tomorrow-ish")
