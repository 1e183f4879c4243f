"""The preview's own transaction: JIT off for its query on PostgreSQL, and nothing left behind."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from buckets.preview import WITHOUT_JIT, preview
from tests.conftest import postgres_only
from tests.factories import EndUserFactory, SignalFactory

OPENED = {"event": "app_opened", "check": "exists"}


def _jit() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        return cursor.fetchone()[0]


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_the_preview_query_runs_without_jit_and_the_session_keeps_its_setting():
    user = EndUserFactory(external_id="u1")
    SignalFactory(user=user, name="app_opened", occurred_at=timezone.now() - timedelta(days=1))
    before = _jit()
    with CaptureQueriesContext(connection) as queries:
        answer = preview(OPENED, now=timezone.now())
    statements = [q["sql"] for q in queries.captured_queries]
    switched = statements.index(WITHOUT_JIT)
    counted = next(i for i, sql in enumerate(statements) if "COUNT(" in sql.upper() and "OVER" in sql.upper())
    assert switched < counted
    assert answer == {"count": 1, "sample": ["ext:u1"]}
    assert _jit() == before  # set for the preview's transaction only

