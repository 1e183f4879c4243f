"""bulk.insert_select: one INSERT … SELECT from per-row columns bound as one parameter each."""

from datetime import UTC, datetime

import pytest

from engagement.bulk import insert_select
from engagement.models import LifecycleTransition
from tests.factories import EndUserFactory

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 5, 4, 6, 0, tzinfo=UTC)
CONSTANTS = {"from_state": "active", "to_state": "dormant", "trigger": "test", "at": NOW, "job_kind": ""}


def test_text_per_row_survives_quotes_backslashes_braces_commas_and_the_word_null():
    actors = ['a"b', "c\\d", "{x,y}", "NULL", "", "Zoë 🙂", "'); DROP TABLE x; --"]
    users = [EndUserFactory().pk for _ in actors]
    written = insert_select(LifecycleTransition, {"user_id": users, "actor": actors}, constants=CONSTANTS,
                            returning=("user_id", "actor"))
    assert sorted(written) == sorted(zip(users, actors, strict=True))
    stored = dict(LifecycleTransition.objects.values_list("user_id", "actor"))
    assert stored == dict(zip(users, actors, strict=True))


def test_constants_and_expressions_apply_to_every_row():
    users = [EndUserFactory().pk for _ in range(3)]
    insert_select(LifecycleTransition, {"user_id": users}, constants=CONSTANTS,
                  expressions={"actor": ("'job:' || CAST(s.user_id AS TEXT) || %s", ["!"])})
    rows = LifecycleTransition.objects.order_by("user_id")
    assert [(t.actor, t.at, t.trigger) for t in rows] == [(f"job:{u}!", NOW, "test") for u in users]


def test_an_empty_column_writes_nothing_and_sends_no_statement(django_assert_num_queries):
    with django_assert_num_queries(0):
        assert insert_select(LifecycleTransition, {"user_id": []}, constants=CONSTANTS) == []


def test_values_that_are_neither_integers_nor_text_are_refused():
    with pytest.raises(TypeError):
        insert_select(LifecycleTransition, {"user_id": [1], "actor": [b"bytes"]}, constants=CONSTANTS)
