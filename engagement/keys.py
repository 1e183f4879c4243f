"""API key issue, lookup and revocation.

A key is `pk_<prefix>_<secret>`: 256 random bits, shown once. Only its SHA-256
is stored; the prefix finds the row. Lookups are cached in-process for a few
seconds, so a revocation takes effect within PULSE_API_KEY_CACHE_SECONDS.
"""

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q

from .models import ApiKey
from .models.keys import SCOPES, scope_allows

LAST_USED_RESOLUTION = timedelta(minutes=1)

_cache: dict[str, tuple[float, "CachedKey | None"]] = {}
_cache_lock = threading.Lock()


@dataclass(frozen=True)
class CachedKey:
    pk: int
    name: str
    key_hash: str
    scopes: tuple[str, ...]
    revoked: bool

    def allows(self, scope: str) -> bool:
        return scope_allows(self.scopes, scope)


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def parse_scopes(text: str | list[str]) -> list[str]:
    scopes = [s.strip() for s in (text.split(",") if isinstance(text, str) else text) if s.strip()]
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown or not scopes:
        raise ValueError(
            f"scopes must be a comma-separated subset of {', '.join(SCOPES)}; got {text!r}"
        )
    return sorted(set(scopes), key=SCOPES.index)


def create_api_key(name: str, scopes, *, now: datetime) -> tuple[ApiKey, str]:
    """Create a key; the raw key is returned here once and never stored."""
    scopes = parse_scopes(scopes)
    prefix = secrets.token_hex(4)
    while ApiKey.objects.filter(prefix=prefix).exists():
        prefix = secrets.token_hex(4)
    raw = f"pk_{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey.objects.create(
        name=name, prefix=prefix, key_hash=hash_key(raw), scopes=scopes, created_at=now
    )
    return key, raw


def revoke(keys, *, now: datetime) -> int:
    count = keys.filter(revoked_at__isnull=True).update(revoked_at=now)
    clear_cache()
    return count


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()


def authenticate(raw: str | None) -> CachedKey | None:
    """The active key matching `raw`, or None. Constant-time comparison of hashes."""
    if not raw or not raw.startswith("pk_") or len(raw) > 200:
        return None
    prefix = raw[3:].split("_", 1)[0]
    cached = _lookup(prefix)
    if cached is None or cached.revoked:
        return None
    if not hmac.compare_digest(cached.key_hash, hash_key(raw)):
        return None
    return cached


def _lookup(prefix: str) -> CachedKey | None:
    ttl = settings.PULSE_API_KEY_CACHE_SECONDS
    now = time.monotonic()
    with _cache_lock:
        hit = _cache.get(prefix)
    if hit and now - hit[0] < ttl:
        return hit[1]
    row = ApiKey.objects.filter(prefix=prefix).first()
    value = (
        CachedKey(row.pk, row.name, row.key_hash, tuple(row.scopes), row.revoked_at is not None)
        if row
        else None
    )
    with _cache_lock:
        if len(_cache) > 10_000:
            _cache.clear()
        _cache[prefix] = (now, value)
    return value


_last_touch: dict[int, float] = {}


def touch_last_used(key: CachedKey, now: datetime) -> None:
    """Record use at most once a minute per key and process: no write per request."""
    mono = time.monotonic()
    if mono - _last_touch.get(key.pk, -1e9) < LAST_USED_RESOLUTION.total_seconds():
        return
    _last_touch[key.pk] = mono
    ApiKey.objects.filter(pk=key.pk).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION)
    ).update(last_used_at=now)
