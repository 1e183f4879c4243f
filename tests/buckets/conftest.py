import pytest
from django.db import connection

from . import stand_ins


@pytest.fixture(scope="session")
def _stand_in_tables(django_db_setup, django_db_blocker):
    """The stand-in source tables, created once in the test database (outside any transaction)."""
    with django_db_blocker.unblock(), connection.schema_editor() as editor:
        for model in (stand_ins.LifecycleState, stand_ins.ProfileFeatureValue):
            editor.create_model(model)


@pytest.fixture
def sources(_stand_in_tables, settings, db):
    """Lifecycle and profile sources plugged in, as the real apps will be by one settings line."""
    settings.PULSE_BUCKET_SOURCES = stand_ins.SOURCES
    stand_ins.refresh_calls.clear()
    return stand_ins
