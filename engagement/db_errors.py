"""Which database errors are about the moment, not about the data.

A deadlock, a serialization failure, a statement timeout, a lock that was not
granted, a lost connection or a server shutting down say nothing about the
signals being processed: the same work succeeds when tried again a little
later. Every other error is a data error, the kind the drain isolates to the
signal that causes it. `is_transient` is the one place that draws this line.

Django wraps the driver's error (`django.db.utils.OperationalError` raised
`from` the psycopg or sqlite3 one), so the chain of explicit causes is
examined; an error merely raised while handling another (`__context__`) is
judged on its own.
"""

import sqlite3

import psycopg
from django.db import utils as django_db

# SQLSTATEs (PostgreSQL appendix A) that are worth retrying.
TRANSIENT_SQLSTATES = frozenset({
    "40001",  # serialization_failure
    "40P01",  # deadlock_detected
    "55P03",  # lock_not_available (NOWAIT, lock_timeout)
    "57014",  # query_canceled (statement_timeout, pg_cancel_backend)
    "57P01",  # admin_shutdown (pg_terminate_backend, fast shutdown)
    "57P02",  # crash_shutdown
    "57P03",  # cannot_connect_now (starting up, in recovery)
    "57P05",  # idle_session_timeout
})
# Whole classes: 08 connection exceptions, 53 insufficient resources (too many
# connections, out of memory, disk full: no signal is to blame for those).
TRANSIENT_SQLSTATE_CLASSES = frozenset({"08", "53"})
SQLITE_BUSY, SQLITE_LOCKED = 5, 6
SQLITE_LOCK_MESSAGES = ("database is locked", "database table is locked")


def is_transient(exc: BaseException) -> bool:
    """True when `exc` (or what it was raised from) is a retryable database condition."""
    return any(_transient(error) for error in _chain(exc))


def _chain(exc: BaseException, limit: int = 8):
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen and len(seen) < limit:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, psycopg.Error):
        return _psycopg_transient(exc)
    if isinstance(exc, sqlite3.Error):
        return _sqlite_transient(exc)
    if isinstance(exc, django_db.InterfaceError):
        return True  # "connection already closed": Django's own words for a lost connection
    if isinstance(exc, django_db.OperationalError) and exc.__cause__ is None:
        return str(exc).startswith(SQLITE_LOCK_MESSAGES)
    return False


def _psycopg_transient(exc: psycopg.Error) -> bool:
    state = exc.sqlstate
    if state is None:
        # No SQLSTATE: the client library speaking, i.e. the connection broke or was closed.
        return isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError))
    return state in TRANSIENT_SQLSTATES or state[:2] in TRANSIENT_SQLSTATE_CLASSES


def _sqlite_transient(exc: sqlite3.Error) -> bool:
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return (code & 0xFF) in (SQLITE_BUSY, SQLITE_LOCKED)  # extended codes keep the primary low byte
    return str(exc).startswith(SQLITE_LOCK_MESSAGES)
