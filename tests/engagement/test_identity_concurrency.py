"""Concurrent requests for the same new identifier never create two users (real PostgreSQL)."""

import threading

import pytest
from django.db import connection
from django.utils import timezone

from engagement.identity import Identifiers, resolve_user
from engagement.ingest import SignalInput, ingest_signals
from engagement.models import EndUser
from tests.conftest import postgres_only

pytestmark = [pytest.mark.django_db(transaction=True), postgres_only]
THREADS = 8


def _race(work):
    barrier = threading.Barrier(THREADS)
    errors = []

    def run(index):
        try:
            barrier.wait(timeout=10)
            work(index)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return errors


def test_concurrent_identify_of_one_new_identifier_creates_one_user():
    errors = _race(lambda i: resolve_user(Identifiers(external_id="racer"), now=timezone.now()))
    assert errors == []
    assert EndUser.objects.filter(external_id="racer").count() == 1


def test_concurrent_ingest_for_the_same_new_users_creates_each_once():
    def ingest(index):
        items = [SignalInput(ids=Identifiers(anonymous_id=f"anon-{n}"), name="app.opened")
                 for n in range(20)]
        ingest_signals(items, source="api", now=timezone.now())

    errors = _race(ingest)
    assert errors == []
    assert EndUser.objects.count() == 20
