"""The registries are validated at start-up: a typo fails `manage.py check`, not the first drain."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from engagement.checks import check_registries
from engagement.extension_points import REGISTRIES, user_section

HERE = "tests.engagement.test_registry_checks."
LAST_SEEN = "engagement.handlers.record_last_seen"
JOB = "engagement.maintenance.prune_job_runs"


def one_argument_handler(signals):
    return None


def handler_with_extras(signals, context, *, dry_run=False):
    return None


def handler_needing_a_keyword(signals, context, *, mode):
    return None


NOT_CALLABLE = 42


@user_section("tiers")
def tiers_section(user):
    return []


@user_section("email")
def email_section(user):
    return "shadowed"


@user_section("memberships")
def second_memberships_section(user):
    return []


@user_section("Bad Key!")
def badly_keyed_section(user):
    return []


def keyless_section(user):
    return []


class Weekly:
    key = "weekly"


class AlsoWeekly:
    key = "weekly"


def outbox(rows):
    return None


def erase_handler(erasure):
    return {}


def old_style_erase_handler(user, now):
    return {}


def two_argument_outbox(rows, now):
    return None


def keyword_outbox(rows, *, now):
    return None


FRAGMENT_AGAIN_USERS = {"paths": {"/api/v1/users": {"post": {"summary": "twice"}}}}
FRAGMENT_NEW_PATH = {"paths": {"/api/v1/tiers": {"get": {"summary": "tiers"}}}}
FRAGMENT_BAD_METHOD = {"paths": {"/api/v1/tiers": {"fetch": {}}}}
FRAGMENT_NO_SLASH = {"paths": {"api/v1/tiers": {"get": {}}}}
FRAGMENT_EXTRA_KEY = {"paths": {}, "servers": []}
FRAGMENT_CLASHING_SCHEMA = {"components": {"schemas": {"Error": {"type": "string"}}}}
FRAGMENT_LIST = [{"paths": {}}]


def errors(**overrides) -> list[tuple[str, str]]:
    with override_settings(**overrides):
        return [(e.id, e.msg) for e in check_registries()]


def ids(**overrides) -> list[str]:
    return [code for code, _ in errors(**overrides)]


@pytest.mark.django_db
def test_the_real_settings_pass_manage_py_check():
    call_command("check")
    assert check_registries() == []


def test_every_registry_named_in_the_design_has_a_protocol_and_a_validator():
    from engagement.checks import VALIDATORS

    assert {"PULSE_SIGNAL_HANDLERS", "PULSE_USER_MERGE_HANDLERS", "PULSE_USER_ERASE_HANDLERS",
            "PULSE_USER_SECTIONS", "PULSE_USER_ADMIN_PANELS", "PULSE_OPENAPI_FRAGMENTS",
            "PULSE_AUDIENCES", "PULSE_SCHEDULES", "PULSE_TICK_HOOKS", "PULSE_OUTBOX"} <= set(REGISTRIES)
    assert all(registry.validate in VALIDATORS for registry in REGISTRIES.values())


@pytest.mark.django_db
def test_a_typo_in_a_handler_path_fails_manage_py_check_naming_setting_and_entry():
    typo = override_settings(PULSE_SIGNAL_HANDLERS=["engagement.handlers.record_last_sen"])
    with typo, pytest.raises(SystemCheckError) as caught:
        call_command("check")
    text = str(caught.value)
    assert "pulse.E001" in text
    assert "PULSE_SIGNAL_HANDLERS" in text and "engagement.handlers.record_last_sen" in text


@pytest.mark.parametrize("path", [
    "engagement.no_such_module.handler", "engagement.handlers.nothing_here", "nodots", "engagement.",
])
def test_an_entry_that_does_not_import_is_error_e001(path):
    assert ids(PULSE_USER_MERGE_HANDLERS=[path]) == ["pulse.E001"]


def test_an_entry_with_the_wrong_arity_is_error_e002_and_says_how_it_is_called():
    [(code, message)] = errors(PULSE_SIGNAL_HANDLERS=[HERE + "one_argument_handler"])
    assert code == "pulse.E002"
    assert "(signals, context)" in message and "one_argument_handler" in message


def test_optional_extra_parameters_are_allowed_but_required_keywords_are_not():
    assert ids(PULSE_SIGNAL_HANDLERS=[HERE + "handler_with_extras"]) == []
    assert ids(PULSE_SIGNAL_HANDLERS=[HERE + "handler_needing_a_keyword"]) == ["pulse.E002"]


def test_an_entry_that_is_not_callable_is_error_e002():
    assert ids(PULSE_USER_ADMIN_PANELS=[HERE + "NOT_CALLABLE"]) == ["pulse.E002"]


def test_erase_handlers_of_the_old_user_and_now_shape_are_refused():
    assert ids(PULSE_USER_ERASE_HANDLERS=[HERE + "erase_handler"]) == []
    assert ids(PULSE_USER_ERASE_HANDLERS=[HERE + "old_style_erase_handler"]) == ["pulse.E002"]


def test_a_duplicate_entry_is_error_e003():
    assert ids(PULSE_SIGNAL_HANDLERS=[LAST_SEEN, LAST_SEEN]) == ["pulse.E003"]


@pytest.mark.parametrize("value", [LAST_SEEN, {"a": LAST_SEEN}, 7])
def test_a_registry_that_is_not_a_list_is_error_e004(value):
    assert ids(PULSE_SIGNAL_HANDLERS=value) == ["pulse.E004"]


@pytest.mark.parametrize("entry", [None, "", "   ", 3, ["engagement.handlers.record_last_seen"]])
def test_an_entry_that_is_not_a_dotted_path_is_error_e004(entry):
    assert ids(PULSE_SIGNAL_HANDLERS=[entry]) == ["pulse.E004"]


def test_a_new_user_section_with_its_own_key_passes():
    sections = ["engagement.user_sections.memberships", HERE + "tiers_section"]
    assert ids(PULSE_USER_SECTIONS=sections) == []


def test_a_user_section_shadowing_a_core_field_is_error_e006():
    [(code, message)] = errors(PULSE_USER_SECTIONS=[HERE + "email_section"])
    assert code == "pulse.E006" and "'email'" in message and "core field" in message


def test_two_user_sections_with_the_same_key_are_error_e006_naming_the_first():
    sections = ["engagement.user_sections.memberships", HERE + "second_memberships_section"]
    [(code, message)] = errors(PULSE_USER_SECTIONS=sections)
    assert code == "pulse.E006" and "engagement.user_sections.memberships" in message


@pytest.mark.parametrize("name", ["keyless_section", "badly_keyed_section"])
def test_a_user_section_without_a_valid_key_is_error_e005(name):
    assert ids(PULSE_USER_SECTIONS=[HERE + name]) == ["pulse.E005"]


def test_audiences_need_unique_keys():
    assert ids(PULSE_AUDIENCES=[HERE + "Weekly"]) == []
    assert ids(PULSE_AUDIENCES=[HERE + "Weekly", HERE + "AlsoWeekly"]) == ["pulse.E006"]
    assert ids(PULSE_AUDIENCES=[LAST_SEEN]) == ["pulse.E005"]


def test_a_new_fragment_passes_and_a_repeated_operation_is_error_e007():
    core = "engagement.openapi.FRAGMENT"
    assert ids(PULSE_OPENAPI_FRAGMENTS=[core, HERE + "FRAGMENT_NEW_PATH"]) == []
    [(code, message)] = errors(PULSE_OPENAPI_FRAGMENTS=[core, HERE + "FRAGMENT_AGAIN_USERS"])
    assert code == "pulse.E007" and "POST /api/v1/users" in message


@pytest.mark.parametrize("name", [
    "FRAGMENT_BAD_METHOD", "FRAGMENT_NO_SLASH", "FRAGMENT_EXTRA_KEY", "FRAGMENT_LIST",
    "FRAGMENT_CLASHING_SCHEMA", "one_argument_handler",
])
def test_a_malformed_or_clashing_fragment_is_error_e007(name):
    fragments = ["engagement.openapi.FRAGMENT", HERE + name]
    assert ids(PULSE_OPENAPI_FRAGMENTS=fragments) == ["pulse.E007"]


def test_the_outbox_is_optional_and_checked_when_set():
    assert ids(PULSE_OUTBOX=None) == [] and ids(PULSE_OUTBOX="") == []
    assert ids(PULSE_OUTBOX=HERE + "keyword_outbox") == []
    assert ids(PULSE_OUTBOX="campaigns.outbox.queue_mesages") == ["pulse.E001"]
    assert ids(PULSE_OUTBOX=HERE + "outbox") == ["pulse.E002"]  # it must take now
    assert ids(PULSE_OUTBOX=[HERE + "outbox"]) == ["pulse.E004"]


def test_tick_hooks_take_now():
    assert ids(PULSE_TICK_HOOKS=[HERE + "outbox"]) == []
    assert ids(PULSE_TICK_HOOKS=[HERE + "two_argument_outbox"]) == ["pulse.E002"]


@pytest.mark.parametrize("entry", [
    ("prune", "17 3 * * *", JOB),
    ("prune", "17 3 * * *", JOB, "sweeps"),
    ("prune", "17 3 * * *", JOB, "sweeps", 3600),
    ("prune", "@daily", JOB, None, timedelta(hours=1)),
    {"kind": "prune", "cron": "*/5 * * * *", "func": JOB, "queue": "default", "timeout": 30.5},
])
def test_well_formed_schedules_pass(entry):
    assert ids(PULSE_SCHEDULES=[entry]) == []


@pytest.mark.parametrize("entry, code", [
    (("prune", "61 3 * * *", JOB), "pulse.E009"),
    (("prune", "every day", JOB), "pulse.E009"),
    (("prune", "0 17 3 * * *", JOB), "pulse.E009"),
    (("prune", None, JOB), "pulse.E009"),
    (("prune", "17 3 * * *", "engagement.maintenance.prune_jobruns"), "pulse.E001"),
    (("prune", "17 3 * * *", LAST_SEEN + "s"), "pulse.E001"),
    (("prune", "17 3 * * *", HERE + "one_argument_handler"), "pulse.E002"),
    (("prune", "17 3 * * *", 12), "pulse.E004"),
    (("prune", "17 3 * * *", JOB, "slow"), "pulse.E010"),
    (("prune", "17 3 * * *", JOB, "sweeps", 0), "pulse.E011"),
    (("prune", "17 3 * * *", JOB, "sweeps", -5), "pulse.E011"),
    (("prune", "17 3 * * *", JOB, "sweeps", True), "pulse.E011"),
    (("prune", "17 3 * * *", JOB, "sweeps", "3600"), "pulse.E011"),
    (("prune", "17 3 * * *", JOB, "sweeps", float("inf")), "pulse.E011"),
    (("prune", "17 3 * * *"), "pulse.E008"),
    (("prune", "17 3 * * *", JOB, "sweeps", 60, "extra"), "pulse.E008"),
    (("", "17 3 * * *", JOB), "pulse.E008"),
    ("prune 17 3 * * *", "pulse.E008"),
])
def test_a_broken_schedule_names_what_is_wrong(entry, code):
    assert ids(PULSE_SCHEDULES=[entry]) == [code]


def test_a_schedule_kind_listed_twice_is_error_e008():
    entry = ("prune", "17 3 * * *", JOB)
    [(code, message)] = errors(PULSE_SCHEDULES=[entry, entry])
    assert code == "pulse.E008" and "'prune'" in message


def test_every_broken_registry_is_reported_at_once():
    found = ids(PULSE_SIGNAL_HANDLERS=["x.y"], PULSE_USER_SECTIONS=[HERE + "email_section"],
                PULSE_SCHEDULES=[("a", "nope", JOB)])
    assert sorted(found) == ["pulse.E001", "pulse.E006", "pulse.E009"]
