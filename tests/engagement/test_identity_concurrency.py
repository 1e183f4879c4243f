"""Concurrent requests for the same new identifier never create two users (real PostgreSQL)."""

import threading

import pytest
from django.utils import timezone

from engagement.identity import Identifiers, resolve_user
from engagement.ingest import SignalInput, ingest_signals
from engagement.models import EndUser
from tests.concurrency import in_threads
from tests.conftest import postgres_only

pytestmark = [pytest.mark.django_db(transaction=True), postgres_only]
THREADS = 8


def _race(work):
    barrier = threading.Barrier(THREADS)

    def run(index):
        barrier.wait(timeout=10)
        work(index)

    return in_threads(run, THREADS, timeout=60)


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
