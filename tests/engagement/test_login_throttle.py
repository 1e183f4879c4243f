"""Admin login throttling per username and per client address (engagement/login_throttle.py)."""

from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
import time_machine
from django.urls import reverse

from engagement.models import LoginFailure

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PASSWORD = "right-password-1"
HOME = "198.51.100.20"


@pytest.fixture
def ada(db, django_user_model):
    return django_user_model.objects.create_superuser("ada", "ada@example.com", PASSWORD)


@pytest.fixture
def clock():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


def login(client, username="ada", password=PASSWORD, address=HOME, **extra):
    return client.post(
        reverse("admin:login"),
        {"username": username, "password": password, "next": "/admin/"},
        REMOTE_ADDR=address,
        **extra,
    )


def fail(client, times, username="ada", address=HOME, **extra):
    for _ in range(times):
        response = login(client, username, "wrong-password", address, **extra)
        assert response.status_code == 200
        assert "correct username and password" in response.text


def logged_in(response) -> bool:
    return response.status_code == 302 and response["Location"] == "/admin/"


def locked(response) -> bool:
    return response.status_code == 200 and "Too many failed logins" in response.text


def test_nine_failures_do_not_lock_the_right_password_out(client, ada, clock):
    fail(client, 9)
    assert logged_in(login(client))


def test_ten_failures_lock_the_eleventh_try_even_with_the_right_password(client, ada, clock):
    fail(client, 10)
    response = login(client)
    assert locked(response)
    assert "_auth_user_id" not in client.session


def test_a_locked_login_is_refused_without_checking_the_password(client, ada, clock):
    fail(client, 10)
    with mock.patch("django.contrib.auth.forms.authenticate") as authenticate:
        assert locked(login(client))
    authenticate.assert_not_called()


def test_usernames_are_throttled_case_insensitively(client, ada, clock):
    fail(client, 5, username="ADA")
    fail(client, 5, username="Ada")
    assert locked(login(client, username="ada"))


def test_a_username_is_locked_from_every_address(client, ada, clock):
    for n in range(10):
        fail(client, 1, address=f"203.0.113.{n + 1}")
    assert locked(login(client, address="192.0.2.77"))


def test_an_address_is_locked_across_usernames(client, ada, clock):
    for n in range(10):
        fail(client, 1, username=f"guess-{n}")
    assert locked(login(client))
    assert logged_in(login(client, address="192.0.2.77"))


def test_failures_spread_wider_than_the_window_do_not_lock(client, ada, clock):
    for _ in range(10):
        fail(client, 1)
        clock.shift(timedelta(seconds=100))  # ten failures over 16 minutes and 40 seconds
    assert logged_in(login(client))


def test_the_lock_ends_fifteen_minutes_after_the_tenth_failure(client, ada, clock):
    fail(client, 10)
    clock.shift(timedelta(minutes=14, seconds=59))
    assert locked(login(client))
    clock.shift(timedelta(seconds=1))
    assert logged_in(login(client))


def test_refused_attempts_while_locked_do_not_extend_the_lock(client, ada, clock):
    fail(client, 10)
    for _ in range(3):
        clock.shift(timedelta(minutes=4))
        assert locked(login(client, password="wrong-password"))
    clock.shift(timedelta(minutes=3))
    assert logged_in(login(client))


def test_the_lock_message_says_how_long_is_left(client, ada, clock):
    fail(client, 10)
    clock.shift(timedelta(minutes=10, seconds=30))
    assert "locked for 5 more minute(s)" in login(client).text


def test_a_successful_login_clears_the_usernames_failures(client, ada, clock):
    fail(client, 9)
    assert logged_in(login(client))
    client.logout()
    fail(client, 9, address="192.0.2.77")
    assert logged_in(login(client, address="192.0.2.77"))


def test_a_successful_login_does_not_clear_the_addresss_failures(client, ada, clock):
    for n in range(9):
        fail(client, 1, username=f"guess-{n}")
    assert logged_in(login(client))
    client.logout()
    fail(client, 1, username="guess-last")
    assert locked(login(client))


def test_x_forwarded_for_is_ignored_without_trusted_proxies(client, ada, clock):
    for n in range(10):
        fail(client, 1, username=f"guess-{n}", HTTP_X_FORWARDED_FOR=f"203.0.113.{n + 1}")
    assert locked(login(client, HTTP_X_FORWARDED_FOR="192.0.2.200"))


def test_x_forwarded_for_is_ignored_from_an_untrusted_peer(client, ada, clock, settings):
    settings.PULSE_TRUSTED_PROXIES = ["10.0.0.0/8"]
    for n in range(10):
        fail(client, 1, username=f"guess-{n}", HTTP_X_FORWARDED_FOR=f"203.0.113.{n + 1}")
    assert locked(login(client, HTTP_X_FORWARDED_FOR="192.0.2.200"))


def test_behind_a_trusted_proxy_the_forwarded_client_is_throttled(client, ada, clock, settings):
    settings.PULSE_TRUSTED_PROXIES = ["10.0.0.0/8"]
    for n in range(10):
        fail(client, 1, username=f"guess-{n}", address="10.0.0.5", HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert locked(login(client, address="10.0.0.5", HTTP_X_FORWARDED_FOR="203.0.113.9"))
    assert logged_in(login(client, address="10.0.0.5", HTTP_X_FORWARDED_FOR="203.0.113.10"))


def test_a_forged_left_hand_forwarded_entry_does_not_escape_the_lock(client, ada, clock, settings):
    settings.PULSE_TRUSTED_PROXIES = ["10.0.0.5"]
    for n in range(10):
        forged = f"192.0.2.{n + 1}, 203.0.113.9"
        fail(client, 1, username=f"guess-{n}", address="10.0.0.5", HTTP_X_FORWARDED_FOR=forged)
    assert locked(login(client, address="10.0.0.5", HTTP_X_FORWARDED_FOR="192.0.2.99, 203.0.113.9"))


def test_the_limits_come_from_settings(client, ada, clock, settings):
    settings.PULSE_LOGIN_MAX_FAILURES = 3
    settings.PULSE_LOGIN_LOCKOUT = timedelta(minutes=1)
    fail(client, 3)
    assert locked(login(client))
    clock.shift(timedelta(minutes=1))
    assert logged_in(login(client))


def test_usernames_addresses_and_passwords_are_never_stored_or_logged(client, ada, clock, caplog):
    caplog.set_level("INFO")
    fail(client, 10, username="Secret-Staffer", address="203.0.113.77")
    assert "event=admin_login_locked by=address,username until=2026-03-02T09:15:00+00:00" in caplog.text
    stored = " ".join(LoginFailure.objects.values_list("key", flat=True))
    # The access log names the client address by design; the throttle's own lines never do.
    throttle_lines = " ".join(r.getMessage() for r in caplog.records if r.name == "pulse.login").lower()
    assert "address_hash=" in throttle_lines
    for secret in ("secret-staffer", "203.0.113.77", "wrong-password"):
        assert secret not in throttle_lines
        assert secret not in stored.lower()
    assert "secret-staffer" not in caplog.text.lower() and "wrong-password" not in caplog.text.lower()


def test_failures_older_than_any_live_lock_are_pruned(client, ada, clock):
    fail(client, 3, username="old-guess")
    clock.shift(timedelta(minutes=30))
    fail(client, 1, username="new-guess")
    assert LoginFailure.objects.count() == 2  # the new failure, by username and by address


def test_a_login_with_a_missing_password_counts_nothing(client, ada, clock):
    for _ in range(12):
        response = client.post(reverse("admin:login"), {"username": "ada", "password": ""}, REMOTE_ADDR=HOME)
        assert response.status_code == 200
    assert LoginFailure.objects.count() == 0
    assert logged_in(login(client))


def test_a_staff_login_without_a_remote_address_is_throttled_by_username(client, ada, clock):
    fail(client, 10, address="")
    assert locked(login(client, address=""))
    assert LoginFailure.objects.filter(key__startswith="addr:").count() == 0
