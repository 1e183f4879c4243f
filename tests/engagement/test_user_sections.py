"""User sections are isolated: one that fails is reported, the others and the core fields are served."""

import logging
import logging.config

import pytest
from django.conf import settings
from django.db import connection
from django.test import override_settings

from engagement.extension_points import user_section
from engagement.views.users import USER_FIELDS, serialize_user
from tests.factories import EndUserFactory, MembershipFactory, SignalFactory

pytestmark = pytest.mark.django_db

HERE = "tests.engagement.test_user_sections."
CORE = ["engagement.user_sections.memberships", "engagement.user_sections.recent_signals"]


@user_section("exploding")
def exploding(user):
    raise RuntimeError(f"cannot read {user.email}")


@user_section("bad_sql")
def bad_sql(user):
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM no_such_table_anywhere")
    return "unreachable"


@user_section("email")
def shadowing(user):
    return "not the real email"


def keyless(user):
    return "no key declared"


def settings_formatter() -> logging.Formatter:
    config = dict(settings.LOGGING["formatters"]["kv"])
    return logging.config.DictConfigurator(settings.LOGGING).configure_formatter(config)


@pytest.fixture
def ada():
    user = EndUserFactory(external_id="ada", email="ada@example.com")
    MembershipFactory(user=user)
    SignalFactory(user=user)
    return user


def test_a_healthy_answer_lists_no_failed_sections(api, ada):
    body = api.get_json("/api/v1/users/ada").json()
    assert body["sections_failed"] == []
    assert len(body["memberships"]) == 1 and len(body["recent_signals"]) == 1


@override_settings(PULSE_USER_SECTIONS=[HERE + "exploding", *CORE])
def test_a_section_that_raises_is_left_out_and_listed_while_the_others_are_served(api, ada):
    response = api.get_json("/api/v1/users/ada")
    assert response.status_code == 200
    body = response.json()
    assert body["sections_failed"] == ["exploding"]
    assert "exploding" not in body
    assert body["email"] == "ada@example.com"
    assert len(body["memberships"]) == 1 and len(body["recent_signals"]) == 1


@override_settings(PULSE_USER_SECTIONS=[HERE + "bad_sql", *CORE])
def test_a_section_whose_query_fails_does_not_poison_the_sections_after_it(api, ada):
    body = api.get_json("/api/v1/users/ada").json()
    assert body["sections_failed"] == ["bad_sql"]
    assert len(body["memberships"]) == 1 and len(body["recent_signals"]) == 1


@pytest.mark.django_db(transaction=True)
@override_settings(PULSE_USER_SECTIONS=[HERE + "bad_sql", *CORE])
def test_outside_a_transaction_a_failing_query_needs_no_savepoint_to_spare_the_others(api, ada):
    body = api.get_json("/api/v1/users/ada").json()
    assert body["sections_failed"] == ["bad_sql"]
    assert len(body["memberships"]) == 1 and len(body["recent_signals"]) == 1


@override_settings(PULSE_USER_SECTIONS=[HERE + "exploding"])
def test_a_failed_section_is_logged_by_key_without_personal_data(api, ada, caplog):
    with caplog.at_level(logging.INFO, logger="pulse.api"):
        api.get_json("/api/v1/users/ada")
    [record] = [r for r in caplog.records if "user_section_failed" in r.getMessage()]
    line = settings_formatter().format(record)  # as production writes it, traceback included
    assert "section=exploding" in line and f"user_id={ada.pk}" in line
    assert "ada@example.com" not in line and "ext:ada" not in line


@override_settings(PULSE_USER_SECTIONS=[HERE + "shadowing", HERE + "keyless", *CORE])
def test_a_colliding_or_keyless_section_that_slipped_past_the_checks_fails_alone(api, ada):
    body = api.get_json("/api/v1/users/ada").json()
    assert body["email"] == "ada@example.com"
    assert body["sections_failed"] == ["email", "keyless"]
    assert "keyless" not in body and len(body["memberships"]) == 1


def test_the_reserved_keys_are_exactly_the_serialized_core_fields(ada):
    assert list(serialize_user(ada)) == list(USER_FIELDS)
