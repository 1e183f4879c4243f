from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from engagement.models import JobRun
from engagement.scheduler import JobResult, Schedule, run_due_jobs, tick

pytestmark = pytest.mark.django_db
CALLS: list[datetime] = []
HOURLY = ("hourly_probe", "0 * * * *", "tests.engagement.test_scheduler.probe_job")
FLAKY = ("flaky_probe", "0 * * * *", "tests.engagement.test_scheduler.flaky_job")
FAIL_NEXT = {"flag": False}


def probe_job(run, now):
    CALLS.append(run.window)
    return JobResult(processed=1, succeeded=1)


def flaky_job(run, now):
    CALLS.append(run.window)
    if FAIL_NEXT["flag"]:
        FAIL_NEXT["flag"] = False
        raise RuntimeError("database went away")
    return JobResult(processed=1, succeeded=1, cursor={"done": True})


@pytest.fixture(autouse=True)
def _reset():
    CALLS.clear()
    FAIL_NEXT["flag"] = False


def at(text):
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_the_latest_window_is_the_last_fire_time_at_or_before_now():
    schedule = Schedule(*HOURLY)
    assert schedule.latest_window(at("2026-03-01T10:59:59")) == at("2026-03-01T10:00:00")
    assert schedule.latest_window(at("2026-03-01T11:00:00")) == at("2026-03-01T11:00:00")


def test_a_window_runs_once_however_many_ticks_see_it(settings):
    settings.PULSE_SCHEDULES = [HOURLY]
    for minute in (0, 1, 2, 30):
        run_due_jobs(at(f"2026-03-01T10:{minute:02d}:00"))
    assert CALLS == [at("2026-03-01T10:00:00")]
    run = JobRun.objects.get(kind="hourly_probe")
    assert (run.status, run.attempts, run.processed, run.succeeded) == ("succeeded", 1, 1, 1)
    assert run.duration_ms is not None and run.finished_at is not None


def test_only_the_latest_missed_window_runs_and_older_ones_are_skipped(settings):
    settings.PULSE_SCHEDULES = [HOURLY]
    run_due_jobs(at("2026-03-01T10:05:00"))
    run_due_jobs(at("2026-03-01T15:05:00"))
    assert CALLS == [at("2026-03-01T10:00:00"), at("2026-03-01T15:00:00")]
    skipped = JobRun.objects.filter(status="skipped").order_by("window")
    assert [r.window.hour for r in skipped] == [11, 12, 13, 14]


def test_a_failed_run_is_resumed_on_the_same_row(settings):
    settings.PULSE_SCHEDULES = [FLAKY]
    FAIL_NEXT["flag"] = True
    first = run_due_jobs(at("2026-03-01T10:01:00"))["flaky_probe"]
    assert first.status == "failed" and "database went away" in first.errors[0]
    second = run_due_jobs(at("2026-03-01T10:02:00"))["flaky_probe"]
    assert second.pk == first.pk
    assert (second.status, second.attempts, second.cursor) == ("succeeded", 2, {"done": True})
    assert JobRun.objects.count() == 1


def test_a_running_window_with_a_live_lease_is_not_started_twice(settings):
    settings.PULSE_SCHEDULES = [HOURLY]
    JobRun.objects.create(kind="hourly_probe", window=at("2026-03-01T10:00:00"), status="running",
                          attempts=1, lease_expires_at=timezone.now() + timedelta(minutes=5))
    run_due_jobs(at("2026-03-01T10:10:00"))
    assert CALLS == []


def test_a_running_window_whose_lease_expired_is_resumed(settings):
    settings.PULSE_SCHEDULES = [HOURLY]
    JobRun.objects.create(kind="hourly_probe", window=at("2026-03-01T10:00:00"), status="running",
                          attempts=1, lease_expires_at=timezone.now() - timedelta(minutes=1))
    run = run_due_jobs(at("2026-03-01T10:10:00"))["hourly_probe"]
    assert (run.status, run.attempts) == ("succeeded", 2)


def test_the_prune_schedule_deletes_old_job_runs(settings):
    settings.PULSE_JOB_RUN_RETENTION_DAYS = 30
    old = JobRun.objects.create(kind="x", window=at("2026-01-01T00:00:00"), status="succeeded")
    recent = JobRun.objects.create(kind="x", window=at("2026-03-01T00:00:00"), status="succeeded")
    run = run_due_jobs(at("2026-03-10T03:20:00"))["prune_job_runs"]
    assert run.status == "succeeded" and run.processed == 1
    assert not JobRun.objects.filter(pk=old.pk).exists()
    assert JobRun.objects.filter(pk=recent.pk).exists()


def test_the_tick_records_a_heartbeat_and_wakes_the_drain_when_signals_wait():
    from engagement.jobs import last_tick
    from engagement.redis_client import get_redis
    from tests.factories import SignalFactory

    SignalFactory()
    tick(at("2026-03-10T03:20:00"))
    assert last_tick() is not None
    assert get_redis().llen("rq:queue:signals") == 1
    assert JobRun.objects.filter(kind="prune_job_runs").exists()


def test_the_cron_config_registers_one_sixty_second_tick():
    from rq import cron

    import config.cron  # noqa: F401

    jobs = [j for j in cron._job_data_registry if j["name"] == "pulse-tick"]
    assert len(jobs) == 1 and jobs[0]["interval"] == 60


def test_the_run_due_jobs_command_accepts_now_and_fails_loudly(settings, capsys):
    settings.PULSE_SCHEDULES = [FLAKY]
    FAIL_NEXT["flag"] = True
    with pytest.raises(CommandError):
        call_command("run_due_jobs", "--now", "2026-03-01T10:00:00Z")
    call_command("run_due_jobs", "--now", "2026-03-01T10:00:00Z")
    assert "status=succeeded" in capsys.readouterr().out


@pytest.mark.parametrize("args", [["--now", "yesterday"], ["--kind", "nope"]])
def test_the_run_due_jobs_command_refuses_bad_arguments(args):
    with pytest.raises(CommandError):
        call_command("run_due_jobs", *args)


def test_the_drain_job_runs_in_a_real_rq_worker():
    import django_rq
    from rq import SimpleWorker

    from engagement.identity import Identifiers
    from engagement.ingest import SignalInput, ingest_signals
    from engagement.models import Signal
    from engagement.wake import wake_drain

    ingest_signals([SignalInput(ids=Identifiers(external_id="w1"), name="e")], source="api",
                   now=timezone.now())
    assert wake_drain()
    queue = django_rq.get_queue("signals")
    SimpleWorker([queue], connection=queue.connection).work(burst=True)
    assert Signal.objects.get().state == "processed"
