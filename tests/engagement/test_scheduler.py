"""The tick: due windows, skipped windows, enqueueing by primary key, tick hooks."""

import logging
from datetime import UTC, datetime, timedelta

import django_rq
import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from rq import SimpleWorker

from engagement.job_runs import JobResult, extend_lease
from engagement.log_format import KeyValueFormatter
from engagement.models import JobRun
from engagement.scheduler import run_due_jobs, tick
from engagement.schedules import Schedule

pytestmark = pytest.mark.django_db
CALLS: list[tuple] = []
HOURLY = {"kind": "hourly_probe", "cron": "0 * * * *", "func": "tests.engagement.test_scheduler.probe_job"}
FLAKY = {"kind": "flaky_probe", "cron": "0 * * * *", "func": "tests.engagement.test_scheduler.flaky_job"}
CHUNKED = {"kind": "chunked_probe", "cron": "0 * * * *", "queue": "sweeps", "timeout": 1800,
           "func": "tests.engagement.test_scheduler.chunked_job"}
FAIL_NEXT = {"flag": False}
CLOSED_PORT_URL = "redis://127.0.0.1:1/0"
PERSONAL = "ada@example.com is not welcome here"


def probe_job(run, now):
    CALLS.append((run.window, now))
    return JobResult(processed=1, succeeded=1)


def flaky_job(run, now):
    CALLS.append((run.window, now))
    if FAIL_NEXT["flag"]:
        FAIL_NEXT["flag"] = False
        raise RuntimeError("database went away")
    return JobResult(processed=1, succeeded=1, cursor={"done": True})


def chunked_job(run, now):
    """Three chunks from the stored cursor; the lease is extended after each one."""
    for chunk in range(run.cursor.get("next", 0), 3):
        CALLS.append(("chunk", chunk))
        extend_lease(run, cursor={"next": chunk + 1})
    return JobResult(processed=3, succeeded=3)


def hook_first(now):
    CALLS.append(("first", now))


def hook_broken(now):
    raise ValueError(PERSONAL)


def hook_last(now):
    CALLS.append(("last", now))


@pytest.fixture(autouse=True)
def _reset():
    CALLS.clear()
    FAIL_NEXT["flag"] = False


@pytest.fixture
def real_commits(transactional_db):
    """Real commits, so the tick's after-commit enqueue happens as it does in production."""


def at(text):
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def jobs_on(queue_name):
    return django_rq.get_queue(queue_name).get_jobs()


def work(queue_name):
    queue = django_rq.get_queue(queue_name)
    SimpleWorker([queue], connection=queue.connection).work(burst=True)


# --- windows (executed in this process) ------------------------------------------


def test_the_latest_window_is_the_last_fire_time_at_or_before_now():
    schedule = Schedule(**HOURLY)
    assert schedule.latest_window(at("2026-03-01T10:59:59")) == at("2026-03-01T10:00:00")
    assert schedule.latest_window(at("2026-03-01T11:00:00")) == at("2026-03-01T11:00:00")


def test_a_window_runs_once_however_many_ticks_see_it(settings):
    settings.PULSE_SCHEDULES = [HOURLY]
    for minute in (0, 1, 2, 30):
        run_due_jobs(at(f"2026-03-01T10:{minute:02d}:00"), inline=True)
    assert CALLS == [(at("2026-03-01T10:00:00"), at("2026-03-01T10:00:00"))]
    run = JobRun.objects.get(kind="hourly_probe")
    assert (run.status, run.attempts, run.processed, run.succeeded) == ("succeeded", 1, 1, 1)
    assert (run.trigger, run.actor, run.queue) == ("schedule", "scheduler", "")
    assert run.duration_ms is not None and run.finished_at is not None


def test_only_the_latest_missed_window_runs_and_older_ones_are_skipped(settings):
    settings.PULSE_SCHEDULES = [HOURLY]
    run_due_jobs(at("2026-03-01T10:05:00"), inline=True)
    run_due_jobs(at("2026-03-01T15:05:00"), inline=True)
    assert [window for window, _ in CALLS] == [at("2026-03-01T10:00:00"), at("2026-03-01T15:00:00")]
    skipped = JobRun.objects.filter(status="skipped").order_by("window")
    assert [r.window.hour for r in skipped] == [11, 12, 13, 14]


def test_a_manual_run_is_not_mistaken_for_the_last_scheduled_window(settings):
    from engagement.job_runs import run_job_now

    settings.PULSE_SCHEDULES = [HOURLY]
    run_job_now("hourly_probe", now=at("2026-03-01T08:30:00"), actor="cli")
    run_due_jobs(at("2026-03-01T12:05:00"), inline=True)
    assert not JobRun.objects.filter(status="skipped").exists()


def test_a_failed_run_is_resumed_on_the_same_row(settings):
    settings.PULSE_SCHEDULES = [FLAKY]
    FAIL_NEXT["flag"] = True
    first = run_due_jobs(at("2026-03-01T10:01:00"), inline=True)["flaky_probe"]
    assert first.status == "failed" and "database went away" in first.errors[0]
    second = run_due_jobs(at("2026-03-01T10:02:00"), inline=True)["flaky_probe"]
    assert second.pk == first.pk
    assert (second.status, second.attempts, second.cursor) == ("succeeded", 2, {"done": True})
    assert JobRun.objects.count() == 1


def test_a_running_window_with_a_live_lease_is_not_started_twice(settings):
    settings.PULSE_SCHEDULES = [HOURLY]
    JobRun.objects.create(kind="hourly_probe", window=at("2026-03-01T10:00:00"), status="running",
                          attempts=1, lease_expires_at=timezone.now() + timedelta(minutes=5))
    run_due_jobs(at("2026-03-01T10:10:00"), inline=True)
    assert CALLS == []


def test_a_running_window_whose_lease_expired_is_resumed(settings):
    settings.PULSE_SCHEDULES = [HOURLY]
    JobRun.objects.create(kind="hourly_probe", window=at("2026-03-01T10:00:00"), status="running",
                          attempts=1, lease_expires_at=timezone.now() - timedelta(minutes=1))
    run = run_due_jobs(at("2026-03-01T10:10:00"), inline=True)["hourly_probe"]
    assert (run.status, run.attempts) == ("succeeded", 2)


def test_the_prune_schedule_deletes_old_job_runs(settings):
    settings.PULSE_JOB_RUN_RETENTION_DAYS = 30
    old = JobRun.objects.create(kind="x", window=at("2026-01-01T00:00:00"), status="succeeded")
    manual = JobRun.objects.create(kind="x", window=at("2026-01-01T00:00:00"), status="succeeded",
                                   trigger="manual")
    recent = JobRun.objects.create(kind="x", window=at("2026-03-01T00:00:00"), status="succeeded")
    run = run_due_jobs(at("2026-03-10T03:20:00"), inline=True)["prune_job_runs"]
    assert run.status == "succeeded" and run.processed == 2
    assert not JobRun.objects.filter(pk__in=[old.pk, manual.pk]).exists()
    assert JobRun.objects.filter(pk=recent.pk).exists()


# --- enqueueing --------------------------------------------------------------------


def test_the_tick_enqueues_the_run_by_primary_key_on_its_schedules_queue_with_its_timeout(
    settings, real_commits
):
    settings.PULSE_SCHEDULES = [CHUNKED]
    run = run_due_jobs(at("2026-03-01T10:00:30"))["chunked_probe"]
    assert (run.status, run.queue, run.attempts) == ("queued", "sweeps", 0)
    assert CALLS == []
    [job] = jobs_on("sweeps")
    assert (job.func_name, job.args, job.timeout, job.id) == (
        "engagement.jobs.run_job_run", (run.pk,), 1800, run.job_id)
    assert jobs_on("default") == []


def test_a_worker_executing_the_enqueued_job_runs_the_window_at_the_ticks_now(settings, real_commits):
    settings.PULSE_SCHEDULES = [HOURLY]
    run_due_jobs(at("2026-03-01T10:00:30"))
    work("default")
    run = JobRun.objects.get(kind="hourly_probe")
    assert (run.status, run.attempts, run.as_of) == ("succeeded", 1, at("2026-03-01T10:00:30"))
    assert CALLS == [(at("2026-03-01T10:00:00"), at("2026-03-01T10:00:30"))]


def test_a_second_tick_while_the_run_is_queued_or_running_enqueues_nothing(settings, real_commits):
    settings.PULSE_SCHEDULES = [HOURLY]
    run_due_jobs(at("2026-03-01T10:00:00"))
    run_due_jobs(at("2026-03-01T10:01:00"))
    assert len(jobs_on("default")) == 1
    JobRun.objects.update(status="running", attempts=1,
                          lease_expires_at=timezone.now() + timedelta(minutes=10))
    django_rq.get_queue("default").empty()
    run_due_jobs(at("2026-03-01T10:02:00"))
    assert jobs_on("default") == []


def test_a_succeeded_window_is_not_enqueued_again(settings, real_commits):
    settings.PULSE_SCHEDULES = [HOURLY]
    run_due_jobs(at("2026-03-01T10:00:00"))
    work("default")
    run_due_jobs(at("2026-03-01T10:05:00"))
    assert jobs_on("default") == [] and len(CALLS) == 1


def test_a_lease_expired_run_is_enqueued_again_and_resumes_with_its_cursor(settings, real_commits):
    settings.PULSE_SCHEDULES = [CHUNKED]
    dead = JobRun.objects.create(
        kind="chunked_probe", window=at("2026-03-01T10:00:00"), status="running", attempts=1,
        cursor={"next": 2}, lease_expires_at=timezone.now() - timedelta(seconds=1),
    )
    run = run_due_jobs(at("2026-03-01T10:20:00"))["chunked_probe"]
    assert (run.pk, run.status) == (dead.pk, "queued")
    assert [job.args for job in jobs_on("sweeps")] == [(dead.pk,)]
    work("sweeps")
    dead.refresh_from_db()
    assert CALLS == [("chunk", 2)]
    assert (dead.status, dead.attempts, dead.cursor) == ("succeeded", 2, {"next": 3})


def test_a_failed_run_is_enqueued_again_on_the_same_row(settings, real_commits):
    settings.PULSE_SCHEDULES = [FLAKY]
    FAIL_NEXT["flag"] = True
    run_due_jobs(at("2026-03-01T10:00:00"))
    work("default")
    assert JobRun.objects.get().status == "failed"
    run_due_jobs(at("2026-03-01T10:01:00"))
    work("default")
    run = JobRun.objects.get()
    assert (run.status, run.attempts) == ("succeeded", 2)


def test_a_queued_run_whose_job_still_waits_in_the_queue_is_not_enqueued_twice(settings, real_commits):
    settings.PULSE_SCHEDULES = [HOURLY]
    run_due_jobs(at("2026-03-01T10:00:00"))
    JobRun.objects.update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    run = run_due_jobs(at("2026-03-01T10:20:00"))["hourly_probe"]
    assert len(jobs_on("default")) == 1
    assert run.lease_expires_at > timezone.now()


def test_a_queued_run_whose_job_was_lost_is_enqueued_again(settings, real_commits):
    settings.PULSE_SCHEDULES = [HOURLY]
    run_due_jobs(at("2026-03-01T10:00:00"))
    django_rq.get_queue("default").connection.flushdb()
    JobRun.objects.update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    run_due_jobs(at("2026-03-01T10:20:00"))
    assert len(jobs_on("default")) == 1


def test_with_redis_unreachable_the_run_stays_due_and_a_later_tick_enqueues_it(settings, real_commits):
    settings.PULSE_SCHEDULES = [CHUNKED]
    reachable = settings.RQ_QUEUES["sweeps"]
    settings.RQ_QUEUES = {**settings.RQ_QUEUES, "sweeps": {**reachable, "URL": CLOSED_PORT_URL}}
    run = run_due_jobs(at("2026-03-01T10:00:00"))["chunked_probe"]
    run.refresh_from_db()
    assert run.awaiting_enqueue
    settings.RQ_QUEUES = {**settings.RQ_QUEUES, "sweeps": reachable}
    again = run_due_jobs(at("2026-03-01T10:01:00"))["chunked_probe"]
    assert again.pk == run.pk and JobRun.objects.count() == 1
    assert [job.args for job in jobs_on("sweeps")] == [(run.pk,)]
    work("sweeps")
    assert JobRun.objects.get().status == "succeeded"


def test_the_tick_records_a_heartbeat_wakes_the_drain_and_enqueues_the_prune(real_commits):
    from engagement.jobs import last_tick
    from engagement.redis_client import get_redis
    from tests.factories import SignalFactory

    SignalFactory()
    assert tick(at("2026-03-10T03:20:00"))["prune_job_runs"] == "queued"
    assert last_tick() is not None
    assert get_redis().llen("rq:queue:signals") == 1
    prune = JobRun.objects.get(kind="prune_job_runs").pk
    assert [job.args for job in jobs_on("default") if job.args == (prune,)] == [(prune,)]


def test_the_cron_config_registers_one_sixty_second_tick():
    from rq import cron

    import config.cron  # noqa: F401

    jobs = [j for j in cron._job_data_registry if j["name"] == "pulse-tick"]
    assert len(jobs) == 1 and jobs[0]["interval"] == 60


# --- tick hooks ----------------------------------------------------------------------


def test_tick_hooks_run_in_order_after_the_schedules(settings):
    settings.PULSE_SCHEDULES = [HOURLY]
    settings.PULSE_TICK_HOOKS = [
        "tests.engagement.test_scheduler.hook_last", "tests.engagement.test_scheduler.hook_first",
    ]
    tick(at("2026-03-01T10:00:00"))
    assert JobRun.objects.filter(kind="hourly_probe").exists()
    assert CALLS == [("last", at("2026-03-01T10:00:00")), ("first", at("2026-03-01T10:00:00"))]


def test_a_failing_tick_hook_is_logged_without_its_message_and_the_others_still_run(
    settings, caplog
):
    settings.PULSE_SCHEDULES = [HOURLY]
    settings.PULSE_TICK_HOOKS = [
        "tests.engagement.test_scheduler.hook_first", "tests.engagement.test_scheduler.hook_broken",
        "tests.engagement.test_scheduler.hook_last",
    ]
    with caplog.at_level(logging.ERROR, logger="pulse.scheduler"):
        assert tick(at("2026-03-01T10:00:00")) == {"hourly_probe": "queued"}
    assert [name for name, _ in CALLS] == ["first", "last"]
    [record] = [r for r in caplog.records if "tick_hook_failed" in r.getMessage()]
    line = KeyValueFormatter().format(record)
    assert "hook=tests.engagement.test_scheduler.hook_broken" in line and "ValueError" in line
    assert "ada@example.com" not in line and "<withheld>" in line


def test_a_tick_hook_that_cannot_be_imported_does_not_stop_the_tick(settings, caplog):
    settings.PULSE_SCHEDULES = [HOURLY]
    settings.PULSE_TICK_HOOKS = ["tests.engagement.test_scheduler.no_such_hook"]
    with caplog.at_level(logging.ERROR, logger="pulse.scheduler"):
        assert tick(at("2026-03-01T10:00:00")) == {"hourly_probe": "queued"}
    assert "tick_hook_failed" in caplog.text


# --- the run_due_jobs command --------------------------------------------------------


def test_the_run_due_jobs_command_runs_inline_at_now_and_fails_loudly(settings, capsys):
    settings.PULSE_SCHEDULES = [FLAKY]
    FAIL_NEXT["flag"] = True
    with pytest.raises(CommandError, match="flaky_probe failed"):
        call_command("run_due_jobs", "--now", "2026-03-01T10:00:00Z", "--inline")
    call_command("run_due_jobs", "--now", "2026-03-01T10:00:00Z", "--inline")
    out = capsys.readouterr().out
    assert "flaky_probe window=2026-03-01T10:00:00+00:00 trigger=schedule status=succeeded" in out
    assert out.rstrip().endswith("ran 1 schedule(s), none failed")


def test_the_run_due_jobs_command_enqueues_by_default(settings, capsys, real_commits):
    settings.PULSE_SCHEDULES = [HOURLY, CHUNKED]
    call_command("run_due_jobs", "--now", "2026-03-01T10:00:00Z", "--kind", "chunked_probe")
    assert "chunked_probe window=2026-03-01T10:00:00+00:00" in capsys.readouterr().out
    assert len(jobs_on("sweeps")) == 1 and jobs_on("default") == []
    assert CALLS == []


def test_the_run_due_jobs_command_fails_when_redis_cannot_take_the_run(settings, capsys, real_commits):
    settings.PULSE_SCHEDULES = [HOURLY]
    settings.RQ_QUEUES = {**settings.RQ_QUEUES,
                          "default": {**settings.RQ_QUEUES["default"], "URL": CLOSED_PORT_URL}}
    with pytest.raises(CommandError, match="hourly_probe not enqueued"):
        call_command("run_due_jobs", "--now", "2026-03-01T10:00:00Z")
    assert "enqueued=no" in capsys.readouterr().out
    assert JobRun.objects.get().awaiting_enqueue


@pytest.mark.parametrize("args", [["--now", "yesterday"], ["--kind", "nope"], ["--kind", "x" * 5000]])
def test_the_run_due_jobs_command_refuses_bad_arguments(args):
    with pytest.raises(CommandError):
        call_command("run_due_jobs", *args)
    assert not JobRun.objects.exists()


def test_the_drain_job_runs_in_a_real_rq_worker():
    from engagement.identity import Identifiers
    from engagement.ingest import SignalInput, ingest_signals
    from engagement.models import Signal
    from engagement.wake import wake_drain

    ingest_signals([SignalInput(ids=Identifiers(external_id="w1"), name="e")], source="api",
                   now=timezone.now())
    assert wake_drain()
    work("signals")
    assert Signal.objects.get().state == "processed"
