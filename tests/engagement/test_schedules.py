"""Schedules in settings: declared with a queue and a timeout, validated when read."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from engagement.checks import check_registries
from engagement.schedules import Schedule, get_schedule, load_schedule, schedules

GOOD = {"kind": "probe", "cron": "*/5 * * * *", "func": "engagement.maintenance.prune_job_runs"}


def test_the_shipped_prune_schedule_names_its_queue_and_timeout():
    assert get_schedule("prune_job_runs") == Schedule(
        kind="prune_job_runs", cron="17 3 * * *", func="engagement.maintenance.prune_job_runs",
        queue="default", timeout=600,
    )


def test_queue_and_timeout_default_to_the_default_queue_and_ten_minutes():
    schedule = load_schedule(GOOD)
    assert (schedule.queue, schedule.timeout) == ("default", 600)


def test_a_schedule_may_name_the_sweeps_queue_and_a_long_timeout():
    schedule = load_schedule({**GOOD, "queue": "sweeps", "timeout": 3600})
    assert (schedule.queue, schedule.timeout) == ("sweeps", 3600)


@pytest.mark.parametrize(
    ("entry", "complaint"),
    [
        (("probe", "* * * * *", "a.b"), "must be a dict"),
        (None, "must be a dict"),
        ({"kind": "probe", "func": "a.b"}, "missing cron"),
        ({**GOOD, "queues": "sweeps"}, "unknown keys: queues"),
        ({**GOOD, 3: "x"}, "unknown keys: 3"),
        ({**GOOD, "cron": "every minute"}, "not a valid cron"),
        ({**GOOD, "cron": "61 * * * *"}, "not a valid cron"),
        ({**GOOD, "cron": None}, "not a valid cron"),
        ({**GOOD, "queue": "nowhere"}, "not in RQ_QUEUES"),
        ({**GOOD, "queue": ["default"]}, "not in RQ_QUEUES"),
        ({**GOOD, "timeout": 0}, "timeout"),
        ({**GOOD, "timeout": -60}, "timeout"),
        ({**GOOD, "timeout": 1.5}, "timeout"),
        ({**GOOD, "timeout": "600"}, "timeout"),
        ({**GOOD, "timeout": True}, "timeout"),
        ({**GOOD, "timeout": 10**9}, "timeout"),
        ({**GOOD, "kind": ""}, "kind"),
        ({**GOOD, "kind": "k" * 101}, "kind"),
        ({**GOOD, "kind": 7}, "kind"),
        ({**GOOD, "func": "prune"}, "dotted path"),
    ],
)
def test_a_malformed_schedule_is_refused_naming_what_is_wrong(entry, complaint):
    with pytest.raises(ImproperlyConfigured, match=complaint):
        load_schedule(entry)


def test_two_schedules_of_one_kind_are_refused(settings):
    settings.PULSE_SCHEDULES = [GOOD, {**GOOD, "cron": "0 * * * *"}]
    with pytest.raises(ImproperlyConfigured, match="kind declared twice: probe"):
        schedules()


def test_the_error_says_which_entry_is_wrong(settings):
    settings.PULSE_SCHEDULES = [GOOD, {**GOOD, "kind": "other", "timeout": 0}]
    with pytest.raises(ImproperlyConfigured, match=r"PULSE_SCHEDULES\[1\] \(other\)"):
        schedules()


def test_the_system_check_passes_on_the_shipped_settings():
    assert check_registries() == []


def test_the_system_check_reports_a_malformed_schedule(settings):
    settings.PULSE_SCHEDULES = [{**GOOD, "queue": "nowhere"}]
    [error] = check_registries()
    assert error.id == "pulse.E010" and "nowhere" in error.msg


def test_the_system_check_reports_a_job_or_hook_that_cannot_be_imported(settings):
    settings.PULSE_SCHEDULES = [{**GOOD, "func": "engagement.maintenance.no_such_job"}]
    settings.PULSE_TICK_HOOKS = ["engagement.no_such_module.hook"]
    errors = check_registries()
    assert [e.id for e in errors] == ["pulse.E001", "pulse.E001"]
    messages = " ".join(e.msg for e in errors)
    assert "no_such_job" in messages and "PULSE_TICK_HOOKS" in messages
