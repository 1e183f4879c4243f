"""The Redis breaker, proven by counting the connections a stalled Redis receives (never by timing)."""

import logging
import socket
import threading

import django_rq
import pytest

from config.redis_connection import rq_connection
from engagement import redis_breaker, redis_client, wake
from engagement.models import Signal
from engagement.redis_breaker import Breaker
from engagement.redis_client import get_redis
from engagement.wake import WAKE_FLAG, wake_drain

pytestmark = pytest.mark.django_db


class StalledRedis:
    """A TCP server that accepts connections and never answers: a Redis under SIGSTOP.

    redis-py drops a connection after a timeout, so every Redis attempt opens a new
    one: `connections` counts the attempts."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def connections(self) -> int:
        return len(self.accepted)

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self):
        self.sock.close()
        for conn in self.accepted:
            conn.close()


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = Clock()
    monkeypatch.setattr(redis_breaker.breaker, "_clock", fake)
    return fake


@pytest.fixture
def stalled(settings, monkeypatch):
    monkeypatch.setattr(redis_client, "_last_warned", {})  # earlier tests' warnings stay unlogged a minute
    server = StalledRedis()
    real_url = settings.REDIS_URL
    settings.REDIS_URL = f"redis://127.0.0.1:{server.port}/0"
    settings.REDIS_SOCKET_TIMEOUT = 0.2
    settings.PULSE_REDIS_BREAKER_SECONDS = 60
    get_redis.cache_clear()
    server.real_url = real_url
    yield server
    get_redis.cache_clear()
    server.close()


def _redis_back(settings, server):
    settings.REDIS_URL = server.real_url
    get_redis.cache_clear()


def _post_signal(api, n):
    return api.post_json("/api/v1/signals", {"user": {"id": "u1"}, "name": "e", "idempotency_key": f"k{n}"})


def test_requests_while_the_breaker_is_open_make_one_redis_attempt_in_all(
    api, stalled, clock, caplog, django_capture_on_commit_callbacks
):
    statuses = []
    for n in range(20):
        with django_capture_on_commit_callbacks(execute=True):
            statuses.append(_post_signal(api, n).status_code)
    assert statuses == [202] * 20
    assert Signal.objects.count() == 20
    assert stalled.connections == 1
    assert redis_breaker.breaker.skipped == 20 * 2 - 1  # a rate-limit check and a wake per request
    warnings = [r for r in caplog.records if "event=redis_unavailable" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING


def test_a_single_call_to_a_stalled_redis_is_one_attempt_not_a_round_of_retries(stalled):
    with pytest.raises(Exception) as raised:
        get_redis().set("k", "v")
    assert type(raised.value).__name__ == "TimeoutError"
    assert stalled.connections == 1


def test_after_the_cool_down_one_probe_tries_redis_while_the_others_still_skip(stalled, clock):
    redis_breaker.call("test", lambda client: client.ping(), False)
    assert redis_breaker.breaker.is_open
    clock.now += 61
    assert redis_breaker.breaker.allow()  # the probe
    assert not redis_breaker.breaker.allow()  # another thread meanwhile
    redis_breaker.breaker.failed("test", TimeoutError())
    assert not redis_breaker.breaker.allow()
    assert stalled.connections == 1


def test_the_probe_closes_the_breaker_when_redis_answers_again(api, stalled, clock, settings, caplog):
    settings.PULSE_RATE_LIMITS = {"ingest": 1, "read": 1, "admin": 1}
    assert [_post_signal(api, n).status_code for n in range(3)] == [202, 202, 202]  # failed open
    _redis_back(settings, stalled)
    clock.now += 61
    assert _post_signal(api, 3).status_code == 202  # the probe: counted, first of this minute
    assert not redis_breaker.breaker.is_open
    assert _post_signal(api, 4).status_code == 429  # the limit applies again
    assert any("event=redis_available" in r.getMessage() for r in caplog.records)


def test_a_wake_skipped_during_an_outage_is_forced_past_a_stale_flag_when_redis_returns(
    stalled, clock, settings
):
    assert wake_drain() is False
    assert wake.wake_is_owed()
    _redis_back(settings, stalled)
    get_redis().set(WAKE_FLAG, "1")  # e.g. a SET that timed out on the client but ran on the server
    clock.now += 61
    assert wake_drain() is True
    assert get_redis().llen("rq:queue:signals") == 1
    assert not wake.wake_is_owed()
    assert wake_drain() is False  # coalesced again: the flag is fresh
    assert get_redis().llen("rq:queue:signals") == 1


def test_healthz_reports_redis_down_while_the_breaker_is_open_without_asking_it(client, stalled, clock):
    assert client.get("/healthz").json()["redis"] == "down"
    assert stalled.connections == 1
    for _ in range(5):
        assert client.get("/healthz").json()["redis"] == "down"
    assert stalled.connections == 1


def test_a_probe_that_raises_a_bug_does_not_leave_the_breaker_stuck(stalled, clock, settings):
    redis_breaker.call("test", lambda client: client.ping(), False)
    clock.now += 61

    def buggy(client):
        raise ValueError("not a Redis error")

    with pytest.raises(ValueError):
        redis_breaker.call("test", buggy, None)
    _redis_back(settings, stalled)
    assert redis_breaker.call("test", lambda client: client.ping(), False) is True
    assert not redis_breaker.breaker.is_open


def test_a_breaker_opens_for_the_cool_down_it_reads_at_each_failure():
    clock, seconds = Clock(), [5.0]
    breaker = Breaker(lambda: seconds[0], clock=clock)
    breaker.failed("test", TimeoutError())
    clock.now += 4.9
    assert not breaker.allow()
    clock.now += 0.2
    assert breaker.allow()
    seconds[0] = 30.0
    breaker.failed("test", TimeoutError())
    clock.now += 29
    assert not breaker.allow()


def test_a_cool_down_of_zero_turns_the_breaker_off(stalled, settings):
    settings.PULSE_REDIS_BREAKER_SECONDS = 0
    for _ in range(3):
        assert redis_breaker.call("test", lambda client: client.ping(), False) is False
    assert stalled.connections == 3


def test_rq_queues_connect_with_socket_timeouts_and_no_retry_on_timeout(settings):
    connection = django_rq.get_queue("signals").connection
    kwargs = connection.connection_pool.connection_kwargs
    assert kwargs["socket_timeout"] == settings.REDIS_SOCKET_TIMEOUT
    assert kwargs["socket_connect_timeout"] == settings.REDIS_SOCKET_TIMEOUT
    assert connection.ping()
    assert connection.get_retry().get_retries() == 1


def test_the_rq_connection_keeps_what_the_url_says():
    config = rq_connection("rediss://ops:s%3Acret@cache.internal:6390/4?health_check_interval=30", 1.5)
    assert (config["HOST"], config["PORT"], config["DB"]) == ("cache.internal", 6390, 4)
    assert (config["USERNAME"], config["PASSWORD"], config["SSL"]) == ("ops", "s:cret", True)
    assert config["REDIS_CLIENT_KWARGS"]["health_check_interval"] == 30
    assert config["REDIS_CLIENT_KWARGS"]["socket_timeout"] == 1.5


def test_the_rq_connection_reaches_a_unix_socket():
    config = rq_connection("unix:///run/redis/redis.sock?db=2", 2.0)
    assert config["REDIS_CLIENT_KWARGS"]["unix_socket_path"] == "/run/redis/redis.sock"
    assert config["DB"] == 2 and config["SSL"] is False


@pytest.mark.parametrize("url", ["http://127.0.0.1:6379/0", "", "redis://h/0?socket_timeout=soon"])
def test_a_malformed_redis_url_is_refused(url):
    with pytest.raises(ValueError):
        rq_connection(url, 2.0)
