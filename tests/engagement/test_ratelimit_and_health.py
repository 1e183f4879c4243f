import pytest

from engagement.redis_client import get_redis
from tests.factories import EndUserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def redis_down(settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    settings.REDIS_SOCKET_TIMEOUT = 0.2
    get_redis.cache_clear()
    yield
    get_redis.cache_clear()


def test_a_key_over_its_limit_gets_429_with_retry_after(api, settings):
    settings.PULSE_RATE_LIMITS = {"ingest": 3, "read": 3, "admin": 3}
    EndUserFactory(external_id="u1")
    statuses = [api.get_json("/api/v1/users/u1").status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]
    limited = api.get_json("/api/v1/users/u1")
    assert limited.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(limited["Retry-After"]) <= 60


def test_limits_are_per_key(api_as, settings):
    settings.PULSE_RATE_LIMITS = {"ingest": 1, "read": 1, "admin": 1}
    EndUserFactory(external_id="u1")
    first, second = api_as("read"), api_as("read")
    assert first.get_json("/api/v1/users/u1").status_code == 200
    assert first.get_json("/api/v1/users/u1").status_code == 429
    assert second.get_json("/api/v1/users/u1").status_code == 200


def test_requests_rejected_for_bad_auth_do_not_consume_the_budget(api, client, settings):
    settings.PULSE_RATE_LIMITS = {"ingest": 2, "read": 2, "admin": 2}
    EndUserFactory(external_id="u1")
    wrong = api.raw_key[:-4] + "AAAA"
    for _ in range(10):
        assert client.get("/api/v1/users/u1", HTTP_AUTHORIZATION=f"Bearer {wrong}").status_code == 401
    assert api.get_json("/api/v1/users/u1").status_code == 200


def test_the_limiter_fails_open_when_redis_is_down(api, settings, redis_down, caplog):
    settings.PULSE_RATE_LIMITS = {"ingest": 1, "read": 1, "admin": 1}
    EndUserFactory(external_id="u1")
    assert [api.get_json("/api/v1/users/u1").status_code for _ in range(3)] == [200, 200, 200]
    warnings = [r for r in caplog.records if "redis_unavailable" in r.getMessage()]
    assert len(warnings) <= 1


def test_healthz_is_ok_with_database_redis_and_a_recent_tick(client):
    from django.utils import timezone

    from engagement.jobs import note_tick
    note_tick(timezone.now())
    body = client.get("/healthz").json()
    assert body == {"status": "ok", "database": "ok", "redis": "ok", "scheduler": "ok"}


def test_healthz_is_degraded_when_the_tick_is_silent(client):
    body = client.get("/healthz").json()
    assert body["status"] == "degraded" and body["scheduler"] == "silent"


def test_healthz_is_degraded_when_redis_is_down(client, redis_down):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "degraded" and response.json()["redis"] == "down"


def test_healthz_answers_503_when_the_database_is_down(client, monkeypatch):
    from django.db import DatabaseError

    from engagement.views import health

    class Broken:
        def cursor(self):
            raise DatabaseError("connection refused")

    monkeypatch.setattr(health, "connection", Broken())
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["database"] == "down"
