"""Shared fixtures. The suite runs on PostgreSQL and on SQLite, both with a real Redis
(REDIS_URL, started by `make test`)."""

import json
import os

import pytest
from django.test import Client
from django.utils import timezone

from buckets.candidates import forget_index
from engagement import keys, redis_breaker, wake
from engagement.redis_client import get_redis


@pytest.fixture(autouse=True)
def _clean_redis_and_caches():
    """Each test starts with an empty Redis database, a closed Redis breaker and no cached API keys."""
    redis_breaker.breaker.reset()
    wake._owed["wake"] = False
    get_redis().flushdb()
    keys.clear_cache()
    keys._last_touch.clear()
    forget_index()  # the buckets' per-process candidate index (each test has its own buckets)
    yield
    keys.clear_cache()


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    """Staff users are made in many tests; the production hasher costs ~1 s each."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def now():
    return timezone.now()


@pytest.fixture
def make_key(db):
    """make_key("ingest,read") -> the raw key string."""

    def make(scopes="ingest,read,admin", name="test key"):
        _, raw = keys.create_api_key(name, scopes, now=timezone.now())
        return raw

    return make


class ApiClient(Client):
    """A test client that sends JSON with a bearer key."""

    def __init__(self, raw_key=None, **kwargs):
        super().__init__(**kwargs)
        self.raw_key = raw_key

    def _auth(self, extra):
        if self.raw_key:
            extra.setdefault("HTTP_AUTHORIZATION", f"Bearer {self.raw_key}")
        return extra

    def post_json(self, path, data, **extra):
        body = data if isinstance(data, (bytes, str)) else json.dumps(data)
        return self.post(path, body, content_type="application/json", **self._auth(extra))

    def get_json(self, path, **extra):
        return self.get(path, **self._auth(extra))

    def delete_json(self, path, **extra):
        return self.delete(path, **self._auth(extra))


@pytest.fixture
def api(make_key):
    """A client holding a key with every scope."""
    return ApiClient(make_key("admin"))


@pytest.fixture
def api_as(make_key):
    """api_as("ingest") -> a client whose key has exactly those scopes."""
    return lambda scopes: ApiClient(make_key(scopes))



postgres_only = pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="needs real PostgreSQL concurrency (the PostgreSQL leg of make test runs it)",
)
