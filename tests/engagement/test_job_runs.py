"""Executing job runs: leases and takeovers, duplicate jobs, manual runs, the trigger key."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction
from django.utils import timezone

from engagement.cli import JobCommand
from engagement.job_runs import LEASE, JobResult, LeaseLost, execute_run, extend_lease, run_job_now
from engagement.jobs import run_job_run
from engagement.models import JobRun
from engagement.scheduler import run_due_jobs

pytestmark = pytest.mark.django_db
CALLS: list = []
HOURLY = {"kind": "hourly_probe", "cron": "0 * * * *", "func": "tests.engagement.test_job_runs.probe_job"}
TAKEN = {"kind": "taken_probe", "cron": "0 * * * *", "func": "tests.engagement.test_job_runs.taken_job"}
LATE = {"kind": "late_probe", "cron": "0 * * * *", "func": "tests.engagement.test_job_runs.late_job"}
BROKEN = {"kind": "broken_probe", "cron": "0 * * * *", "func": "tests.engagement.test_job_runs.broken_job"}


def probe_job(run, now):
    CALLS.append((run.trigger, now))
    return JobResult(processed=1, succeeded=1)


def take_over(run):
    """What the tick and another worker do once this worker's lease has expired."""
    JobRun.objects.filter(pk=run.pk).update(status="running", attempts=run.attempts + 1,
                                            cursor={"next": 1, "owner": "other"})


def taken_job(run, now):
    CALLS.append("chunk 0")
    take_over(run)
    extend_lease(run, cursor={"next": 1})
    CALLS.append("chunk 1")
    return JobResult(processed=2, succeeded=2)


def late_job(run, now):
    """Finishes its only chunk after another worker took the run over."""
    take_over(run)
    return JobResult(processed=1, succeeded=1, cursor={"mine": True})


def broken_job(run, now):
    raise RuntimeError("ada@example.com broke it")


@pytest.fixture(autouse=True)
def _schedules(settings):
    CALLS.clear()
    settings.PULSE_SCHEDULES = [HOURLY, TAKEN, LATE, BROKEN]


def at(text):
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def queued(kind, **fields):
    return JobRun.objects.create(kind=kind, window=at("2026-03-01T10:00:00"), status="queued",
                                 as_of=at("2026-03-01T10:00:30"), **fields)


# --- leases ------------------------------------------------------------------------


def test_extending_the_lease_pushes_it_forward_and_saves_the_cursor():
    run = JobRun.objects.create(kind="hourly_probe", window=at("2026-03-01T10:00:00"),
                                status="running", attempts=1, lease_expires_at=timezone.now())
    with time_machine.travel(timezone.now() + timedelta(minutes=10)):
        extend_lease(run, cursor={"next": 7})
        expected = timezone.now() + LEASE
    stored = JobRun.objects.get(pk=run.pk)
    assert stored.cursor == {"next": 7}
    assert stored.lease_expires_at == run.lease_expires_at
    assert abs(stored.lease_expires_at - expected) < timedelta(seconds=5)


def test_an_expired_lease_nobody_took_over_can_still_be_extended():
    run = JobRun.objects.create(kind="hourly_probe", window=at("2026-03-01T10:00:00"),
                                status="running", attempts=3,
                                lease_expires_at=timezone.now() - timedelta(hours=1))
    extend_lease(run)
    assert JobRun.objects.get(pk=run.pk).lease_expires_at > timezone.now()


def test_a_worker_whose_run_was_taken_over_stops_at_its_next_chunk_without_writing():
    run = execute_run(queued("taken_probe").pk)
    assert CALLS == ["chunk 0"]
    assert (run.status, run.attempts, run.cursor) == ("running", 2, {"next": 1, "owner": "other"})
    assert run.finished_at is None


def test_a_worker_whose_run_was_taken_over_does_not_overwrite_the_new_owners_outcome():
    run = execute_run(queued("late_probe").pk)
    assert (run.status, run.attempts, run.processed) == ("running", 2, 0)
    assert run.cursor == {"next": 1, "owner": "other"}


def test_a_run_that_is_re_queued_meanwhile_is_noticed_too():
    run = JobRun.objects.create(kind="hourly_probe", window=at("2026-03-01T10:00:00"),
                                status="queued", attempts=1)
    with pytest.raises(LeaseLost):
        extend_lease(run)


# --- the RQ entry point ------------------------------------------------------------


def test_the_job_entry_point_runs_a_queued_run_at_its_as_of():
    run = queued("hourly_probe")
    assert run_job_run(run.pk) == {"job_run": run.pk, "status": "succeeded", "attempts": 1}
    assert CALLS == [("schedule", at("2026-03-01T10:00:30"))]


@pytest.mark.parametrize("status", ["succeeded", "skipped", "failed"])
def test_a_duplicate_job_for_a_run_that_is_not_queued_does_nothing(status):
    run = queued("hourly_probe")
    JobRun.objects.filter(pk=run.pk).update(status=status)
    assert run_job_run(run.pk)["status"] == status
    assert CALLS == []


def test_a_duplicate_job_for_a_run_under_a_live_lease_does_nothing():
    run = queued("hourly_probe", attempts=1)
    JobRun.objects.filter(pk=run.pk).update(status="running",
                                            lease_expires_at=timezone.now() + timedelta(minutes=1))
    assert run_job_run(run.pk) == {"job_run": run.pk, "status": "running", "attempts": 1}
    assert CALLS == []


def test_a_job_for_a_deleted_run_reports_it_missing():
    assert run_job_run(987654321) == {"job_run": 987654321, "status": "missing"}


def test_a_run_whose_schedule_was_removed_fails_and_says_why(settings):
    run = queued("hourly_probe")
    settings.PULSE_SCHEDULES = []
    run = execute_run(run.pk)
    assert run.status == "failed" and "no schedule named 'hourly_probe'" in run.errors[0]


# --- manual runs -------------------------------------------------------------------


def test_manual_runs_are_rows_of_their_own_even_for_a_window_the_schedule_ran():
    scheduled = run_due_jobs(at("2026-03-01T10:05:00"), kind="hourly_probe", inline=True)["hourly_probe"]
    first = run_job_now("hourly_probe", now=at("2026-03-01T10:20:00"), actor="cli")
    second = run_job_now("hourly_probe", now=at("2026-03-01T10:20:00"), actor="staff:ada")
    assert len({scheduled.pk, first.pk, second.pk}) == 3
    assert first.window == second.window == scheduled.window
    assert [(r.trigger, r.actor, r.status) for r in (first, second)] == [
        ("manual", "cli", "succeeded"), ("manual", "staff:ada", "succeeded")]
    assert CALLS == [("schedule", at("2026-03-01T10:05:00")), ("manual", at("2026-03-01T10:20:00")),
                     ("manual", at("2026-03-01T10:20:00"))]
    assert JobRun.objects.get(pk=scheduled.pk).attempts == 1


def test_a_manual_run_does_not_stand_in_for_the_scheduled_window():
    run_job_now("hourly_probe", now=at("2026-03-01T10:20:00"), actor="cli")
    run_due_jobs(at("2026-03-01T10:30:00"), kind="hourly_probe", inline=True)
    assert [trigger for trigger, _ in CALLS] == ["manual", "schedule"]


def test_a_manual_run_of_an_unknown_kind_is_refused():
    with pytest.raises(KeyError):
        run_job_now("nope", now=at("2026-03-01T10:20:00"), actor="cli")
    assert not JobRun.objects.exists()


def test_a_manual_run_of_a_failing_job_is_recorded_failed():
    run = run_job_now("broken_probe", now=at("2026-03-01T10:20:00"), actor="cli")
    assert (run.status, run.trigger, run.finished_at is not None) == ("failed", "manual", True)


def test_the_run_job_command_prints_one_summary_line(capsys):
    call_command("run_job", "hourly_probe", "--now", "2026-03-01T10:20:00Z")
    [line] = capsys.readouterr().out.splitlines()
    assert line.startswith("hourly_probe window=2026-03-01T10:00:00+00:00 trigger=manual "
                           "status=succeeded attempts=1 processed=1 succeeded=1")
    assert JobRun.objects.get().actor == "cli"


def test_the_run_job_command_exits_non_zero_when_the_run_failed():
    with pytest.raises(CommandError, match="broken_probe failed: RuntimeError"):
        call_command("run_job", "broken_probe", "--now", "2026-03-01T10:20:00Z")
    assert JobRun.objects.get().status == "failed"


@pytest.mark.parametrize("args", [["nope"], ["hourly_probe", "--now", "soon"],
                                  ["hourly_probe", "--now", "9" * 400], ["\x00"]])
def test_the_run_job_command_refuses_bad_arguments(args):
    with pytest.raises(CommandError):
        call_command("run_job", *args)
    assert not JobRun.objects.exists()


class HourlyCommand(JobCommand):
    kind = "hourly_probe"


def test_a_job_command_is_a_manual_run_of_its_kind_at_its_now(capsys):
    call_command(HourlyCommand(), "--now", "2026-03-01T11:59:00Z")
    assert CALLS == [("manual", at("2026-03-01T11:59:00"))]
    assert "trigger=manual status=succeeded" in capsys.readouterr().out


def test_a_job_commands_now_may_be_a_bare_date_meaning_its_midnight_utc():
    call_command(HourlyCommand(), "--now", "2026-03-02")
    assert CALLS == [("manual", at("2026-03-02T00:00:00"))]


def test_a_job_commands_unreadable_now_is_a_clear_command_error():
    with pytest.raises(CommandError, match="--now: must be an ISO 8601 date-time"):
        call_command(HourlyCommand(), "--now", "next tuesday")
    assert CALLS == []


# --- the (kind, window) key holds for scheduled runs only, on both databases -----------


@pytest.mark.parametrize(
    ("first", "second", "allowed"),
    [
        ("schedule", "schedule", False),
        ("schedule", "manual", True),
        ("manual", "schedule", True),
        ("manual", "manual", True),
    ],
)
def test_kind_and_window_are_unique_among_scheduled_runs_only(first, second, allowed):
    window = at("2026-03-01T10:00:00")
    JobRun.objects.create(kind="k", window=window, status="succeeded", trigger=first)
    try:
        with transaction.atomic():
            JobRun.objects.create(kind="k", window=window, status="succeeded", trigger=second)
    except IntegrityError:
        created = False
    else:
        created = True
    assert created is allowed
    assert JobRun.objects.count() == (2 if allowed else 1)
