"""Which address a request came from (engagement/client_address.py)."""

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import RequestFactory

from engagement.client_address import client_address

CASES = [
    # (trusted proxies, REMOTE_ADDR, X-Forwarded-For or None, expected client address)
    ([], "203.0.113.5", None, "203.0.113.5"),
    ([], "203.0.113.5", "192.0.2.1", "203.0.113.5"),
    (["10.0.0.0/8"], "203.0.113.5", "192.0.2.1", "203.0.113.5"),
    (["10.0.0.0/8"], "10.1.2.3", "192.0.2.1", "192.0.2.1"),
    (["10.0.0.0/8"], "10.1.2.3", None, "10.1.2.3"),
    (["10.0.0.0/8"], "10.1.2.3", "   ", "10.1.2.3"),
    (["10.0.0.0/8"], "10.1.2.3", "6.6.6.6, 192.0.2.1", "192.0.2.1"),
    (["10.0.0.0/8"], "10.1.2.3", "6.6.6.6, 192.0.2.1, 10.9.9.9", "192.0.2.1"),
    (["10.0.0.0/8"], "10.1.2.3", "10.7.7.7, 10.9.9.9", "10.7.7.7"),
    (["10.0.0.0/8"], "10.1.2.3", "6.6.6.6, not-an-ip, 10.9.9.9", "10.9.9.9"),
    (["10.0.0.0/8"], "10.1.2.3", "6.6.6.6, 192.0.2.1:51234", "192.0.2.1"),
    (["10.0.0.0/8"], "10.1.2.3", "[2001:db8::7]:443", "2001:db8::7"),
    (["10.0.0.0/8", "2001:db8:ffff::/48"], "2001:db8:ffff::1", "2001:db8::7", "2001:db8::7"),
    (["10.0.0.1"], "10.0.0.2", "192.0.2.1", "10.0.0.2"),
    (["10.0.0.1"], "::ffff:10.0.0.1", "192.0.2.1", "192.0.2.1"),
    ([], "::ffff:203.0.113.5", None, "203.0.113.5"),
    ([], "", None, None),
    ([], "garbage", None, None),
    (["10.0.0.0/8"], "10.1.2.3", "x" * 10_000, "10.1.2.3"),
]


@pytest.mark.parametrize(("trusted", "remote", "forwarded", "expected"), CASES)
def test_the_client_is_the_right_most_address_not_a_trusted_proxy(settings, trusted, remote, forwarded,
                                                                   expected):
    settings.PULSE_TRUSTED_PROXIES = trusted
    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    assert client_address(RequestFactory().get("/", **extra)) == expected


def test_a_bad_trusted_proxy_entry_is_a_configuration_error(settings):
    settings.PULSE_TRUSTED_PROXIES = ["10.0.0.0/8", "proxy.internal"]
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.1")
    with pytest.raises(ImproperlyConfigured, match="proxy.internal"):
        client_address(request)
