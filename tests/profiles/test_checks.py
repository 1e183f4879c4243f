"""The registry is validated at start-up: a typo in `invalidated_by` stops it with a clear error."""

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from profiles.checks import check_feature_registry

SHIPPED = [
    "profiles.features.tips", "profiles.features.activity", "profiles.features.messages",
    "profiles.features.items", "profiles.features.lifecycle",
]


def messages(settings, extra):
    settings.PULSE_PROFILE_FEATURE_MODULES = [*SHIPPED, *extra]
    return {(e.id, e.msg) for e in check_feature_registry()}


def test_the_shipped_registry_passes_the_check(settings):
    assert messages(settings, []) == set()


def test_an_unknown_invalidated_by_name_is_an_error_naming_feature_and_signal(settings):
    found = messages(settings, ["tests.profiles.declarations"])
    assert ("pulse.P005", "PULSE_PROFILE_FEATURE_MODULES: feature 'bad_typo': invalidated_by names "
            "'tip.feedbak', which is not in the signal catalog") in found


@pytest.mark.django_db
def test_the_start_up_check_stops_the_command_on_a_typo(settings):
    settings.PULSE_PROFILE_FEATURE_MODULES = [*SHIPPED, "tests.profiles.declarations"]
    with pytest.raises(SystemCheckError, match="tip.feedbak"):
        call_command("check")


def test_every_kind_of_bad_declaration_is_reported_and_a_good_one_is_not(settings):
    found = messages(settings, ["tests.profiles.declarations"])
    codes = {code for code, _ in found}
    assert {"pulse.P002", "pulse.P003", "pulse.P004", "pulse.P005", "pulse.P006"} <= codes
    text = " ".join(message for _, message in found)
    assert "'tip_volume_30d' is declared twice" in text
    assert "dtype 'boolean'" in text
    assert "'bad_ttl': ttl" in text
    assert "not the string 'tip.served'" in text
    assert "compute cannot be called as (user_ids, now)" in text
    assert "fine_any" not in text


def test_a_name_added_to_the_catalog_setting_is_accepted(settings):
    settings.PULSE_SIGNAL_CATALOG = [*settings.PULSE_SIGNAL_CATALOG, "tip.feedbak"]
    assert not any("bad_typo" in m for _, m in messages(settings, ["tests.profiles.declarations"]))


def test_a_module_that_does_not_import_is_an_error(settings):
    found = messages(settings, ["profiles.features.no_such_module"])
    assert any(code == "pulse.P001" and "no_such_module" in msg for code, msg in found)
