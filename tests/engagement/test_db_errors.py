"""`db_errors.is_transient`: real errors from both databases, and constructed ones for the rest."""

import sqlite3
import threading

import psycopg
import psycopg.errors as pg
import pytest
from django.db import DatabaseError, connection, transaction
from django.db import utils as dj
from django.utils import timezone

from engagement.db_errors import is_transient
from engagement.models import Tenant
from tests.conftest import postgres_only

sqlite_only = pytest.mark.skipif(
    connection.vendor != "sqlite", reason="needs the SQLite database file (the SQLite leg runs it)"
)


def tenant(key):
    return Tenant.objects.create(key=key, created_at=timezone.now())


def wrapped(driver_error, django_class=dj.OperationalError):
    """What Django raises: its own class, `from` the driver's error."""
    try:
        raise django_class(*driver_error.args) from driver_error
    except django_class as exc:
        return exc


TRANSIENT = [
    pg.DeadlockDetected("deadlock detected"),
    pg.SerializationFailure("could not serialize access"),
    pg.QueryCanceled("canceling statement due to statement timeout"),
    pg.LockNotAvailable("could not obtain lock"),
    pg.AdminShutdown("terminating connection due to administrator command"),
    pg.CrashShutdown("crash"),
    pg.CannotConnectNow("the database system is starting up"),
    pg.IdleSessionTimeout("idle session timeout"),
    pg.ConnectionFailure("connection failure"),
    pg.TooManyConnections("too many clients already"),
    psycopg.OperationalError("consuming input failed: server closed the connection unexpectedly"),
    psycopg.InterfaceError("the connection is closed"),
    wrapped(pg.DeadlockDetected("deadlock detected")),
    wrapped(pg.SerializationFailure("could not serialize access")),
    wrapped(psycopg.OperationalError("server closed the connection unexpectedly")),
    wrapped(psycopg.InterfaceError("the connection is closed"), dj.InterfaceError),
    dj.InterfaceError("connection already closed"),
    sqlite3.OperationalError("database is locked"),
    sqlite3.OperationalError("database table is locked: engagement_signal"),
    wrapped(sqlite3.OperationalError("database is locked")),
    dj.OperationalError("database is locked"),
]
DATA = [
    ValueError("poisoned batch"),
    KeyError("feature"),
    TypeError("unsupported operand"),
    RuntimeError("deadlock detected"),  # the words alone are not the error
    pg.UniqueViolation("duplicate key value"),
    pg.NumericValueOutOfRange("integer out of range"),
    pg.InvalidTextRepresentation("invalid input syntax for type bigint"),
    pg.UndefinedTable("relation does not exist"),
    pg.ProgramLimitExceeded("index row size exceeds maximum"),  # an OperationalError about the data
    pg.CharacterNotInRepertoire("invalid byte sequence for encoding"),
    wrapped(pg.UniqueViolation("duplicate key value"), dj.IntegrityError),
    wrapped(pg.NumericValueOutOfRange("integer out of range"), dj.DataError),
    wrapped(pg.ProgramLimitExceeded("index row size exceeds maximum")),
    sqlite3.OperationalError("no such table: engagement_signal"),
    sqlite3.IntegrityError("UNIQUE constraint failed: engagement_signal.idempotency_key"),
    wrapped(sqlite3.OperationalError("too many SQL variables")),
    dj.OperationalError("no such column: x"),
    dj.IntegrityError("FOREIGN KEY constraint failed"),
    DatabaseError("something else"),
]


@pytest.mark.parametrize("exc", TRANSIENT, ids=repr)
def test_errors_about_the_moment_are_transient(exc):
    assert is_transient(exc)


@pytest.mark.parametrize("exc", DATA, ids=repr)
def test_errors_about_the_data_are_not_transient(exc):
    assert not is_transient(exc)


def test_a_data_error_merely_raised_while_handling_a_deadlock_is_judged_on_its_own():
    try:
        try:
            raise pg.DeadlockDetected("deadlock detected")
        except pg.DeadlockDetected:
            raise ValueError("bad property") from None
    except ValueError as exc:
        assert not is_transient(exc)


def test_a_transient_cause_deep_in_a_chain_is_found():
    try:
        try:
            raise pg.SerializationFailure("could not serialize access")
        except pg.SerializationFailure as inner:
            raise dj.OperationalError("wrapped") from inner
    except dj.OperationalError as middle:
        outer = RuntimeError("handler gave up")
        outer.__cause__ = middle
    assert is_transient(outer)


def test_a_cause_chain_that_loops_back_on_itself_terminates():
    first, second = ValueError("a"), ValueError("b")
    first.__cause__, second.__cause__ = second, first
    assert not is_transient(first)


def test_an_endless_chain_of_causes_is_not_walked_to_the_end():
    head = ValueError("0")
    current = head
    for n in range(10_000):
        current.__cause__ = ValueError(str(n))
        current = current.__cause__
    current.__cause__ = pg.DeadlockDetected("deep down")
    assert not is_transient(head)


def test_a_real_lock_on_an_sqlite_file_is_transient(tmp_path):
    path = tmp_path / "locked.sqlite3"
    holder, other = sqlite3.connect(path), sqlite3.connect(path, timeout=0)
    try:
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(sqlite3.OperationalError) as info:
            other.execute("BEGIN IMMEDIATE")
    finally:
        holder.close()
        other.close()
    assert is_transient(info.value)


@sqlite_only
@pytest.mark.django_db(transaction=True)
def test_a_real_lock_on_the_pulse_database_reaches_django_as_a_transient_error():
    holder = sqlite3.connect(connection.settings_dict["NAME"], timeout=0)
    try:
        holder.execute("BEGIN IMMEDIATE")
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA busy_timeout=0")
        with pytest.raises(dj.OperationalError) as info:
            tenant("locked-out")
    finally:
        holder.rollback()
        holder.close()
        connection.close()  # the next connection gets the configured busy timeout again
    assert is_transient(info.value)


@postgres_only
@pytest.mark.django_db
def test_a_real_statement_timeout_is_transient():
    with pytest.raises(dj.OperationalError) as info, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL statement_timeout = 1")
        cursor.execute("SELECT pg_sleep(2)")
    assert isinstance(info.value.__cause__, pg.QueryCanceled)
    assert is_transient(info.value)


@postgres_only
@pytest.mark.django_db
def test_a_real_constraint_violation_on_postgresql_is_not_transient():
    tenant("twice")
    with pytest.raises(dj.IntegrityError) as info, transaction.atomic():
        tenant("twice")
    assert not is_transient(info.value)


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_real_deadlock_is_transient():
    first, second = tenant("first"), tenant("second")
    both_locked_one = threading.Barrier(2)
    errors: list[BaseException] = []

    def lock(a, b):
        try:
            with transaction.atomic():
                Tenant.objects.select_for_update().get(pk=a.pk)
                both_locked_one.wait(timeout=10)
                Tenant.objects.select_for_update().get(pk=b.pk)
        except DatabaseError as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=lock, args=(first, second)),
        threading.Thread(target=lock, args=(second, first)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(errors) == 1, "PostgreSQL breaks a deadlock by failing exactly one side"
    assert isinstance(errors[0].__cause__, pg.DeadlockDetected)
    assert is_transient(errors[0])
