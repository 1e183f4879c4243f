"""Admin login throttling, per username and per client address.

`PULSE_LOGIN_MAX_FAILURES` failed logins within `PULSE_LOGIN_WINDOW` lock the
username (compared case-insensitively) or the client address they came from
for `PULSE_LOGIN_LOCKOUT`, counted from the failure that reached the limit.
While locked, a login is refused before its password is checked, and refused
attempts are not counted, so the lock ends on time even under a steady
attack. A successful login clears the username's failures, never the
address's (a valid account must not reset the count of an address trying
others).

The state is in the database, shared by every web process and machine and
never failing open the way a Redis outage would. Usernames and addresses are
stored and logged only as keyed hashes. Rows older than any live lock are
pruned whenever a failure is recorded. Under concurrency the count is
approximate by at most the number of attempts in flight at the same moment.
"""

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.utils.crypto import salted_hmac

from .models import LoginFailure

log = logging.getLogger("pulse.login")

USERNAME, ADDRESS = "username", "address"
_KEY_PREFIX = {USERNAME: "user", ADDRESS: "addr"}


@dataclass(frozen=True)
class Lock:
    by: tuple[str, ...]  # what is locked: USERNAME, ADDRESS or both
    until: datetime  # when the last of them ends


def throttle_key(kind: str, value: str) -> str:
    """A keyed hash of a username or address: stable across processes, useless without SECRET_KEY."""
    if kind == USERNAME:
        value = value.casefold()
    digest = salted_hmac("pulse.login_throttle", f"{kind}:{value}", algorithm="sha256").hexdigest()
    return f"{_KEY_PREFIX[kind]}:{digest}"


def current_lock(username: str, address: str | None, *, now: datetime) -> Lock | None:
    """The lock on this username or address (or both) at `now`, if any."""
    keys = _keys(username, address)
    since = now - settings.PULSE_LOGIN_WINDOW - settings.PULSE_LOGIN_LOCKOUT
    times = defaultdict(list)
    rows = (
        LoginFailure.objects.filter(key__in=keys, failed_at__gt=since, failed_at__lte=now)
        .order_by("failed_at")
        .values_list("key", "failed_at")
    )
    for key, failed_at in rows:
        times[key].append(failed_at)
    ends = {
        keys[key]: until
        for key, failures in times.items()
        if (until := locked_until(failures, now=now)) is not None
    }
    return Lock(tuple(sorted(ends)), max(ends.values())) if ends else None


def locked_until(failures: list[datetime], *, now: datetime) -> datetime | None:
    """When the lock made by these failure times (ascending) ends, if it is still on at `now`.

    A lock starts at any failure that is the MAX-th within one window.
    """
    limit = settings.PULSE_LOGIN_MAX_FAILURES
    if limit < 1:
        return None
    until = None
    for last in range(limit - 1, len(failures)):
        if failures[last] - failures[last - limit + 1] < settings.PULSE_LOGIN_WINDOW:
            ends = failures[last] + settings.PULSE_LOGIN_LOCKOUT
            if ends > now and (until is None or ends > until):
                until = ends
    return until


def record_failure(username: str, address: str | None, *, now: datetime) -> Lock | None:
    """Count a failed login against the username and the address; return the lock it caused, if any."""
    keys = _keys(username, address)
    LoginFailure.objects.bulk_create([LoginFailure(key=key, failed_at=now) for key in keys])
    prune(now=now)
    log.info("event=admin_login_failed username_hash=%s address_hash=%s", *_log_hashes(keys))
    lock = current_lock(username, address, now=now)
    if lock is not None:
        log.warning(
            "event=admin_login_locked by=%s until=%s username_hash=%s address_hash=%s",
            ",".join(lock.by), lock.until.isoformat(), *_log_hashes(keys),
        )
    return lock


def clear_username(username: str) -> int:
    """Forget the username's failures (after a successful login); the address's stay."""
    return LoginFailure.objects.filter(key=throttle_key(USERNAME, username)).delete()[0]


def prune(*, now: datetime) -> int:
    """Delete failures too old to take part in any lock still running at `now`."""
    cutoff = now - settings.PULSE_LOGIN_WINDOW - settings.PULSE_LOGIN_LOCKOUT
    return LoginFailure.objects.filter(failed_at__lte=cutoff).delete()[0]


def _keys(username: str, address: str | None) -> dict[str, str]:
    keys = {throttle_key(USERNAME, username): USERNAME}
    if address:
        keys[throttle_key(ADDRESS, address)] = ADDRESS
    return keys


def _log_hashes(keys: dict[str, str]) -> tuple[str, str]:
    """Short hash prefixes of the username and the address ("-" when absent), enough to
    correlate log lines, never the username or address themselves."""
    prefixes = {kind: key.split(":", 1)[1][:12] for key, kind in keys.items()}
    return prefixes.get("username", "-"), prefixes.get("address", "-")
