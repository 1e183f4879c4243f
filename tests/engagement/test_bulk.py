"""The insert-with-returned-ids helper behaves the same on PostgreSQL and SQLite."""

import pytest
from django.utils import timezone

from engagement.bulk import insert_returning
from engagement.models import Tenant

pytestmark = pytest.mark.django_db


def _rows(*keys, name=""):
    now = timezone.now()
    return [{"key": k, "name": name, "traits": {"k": k}, "created_at": now} for k in keys]


CASES = [
    # (existing keys, incoming keys, update?, expected returned keys, expected names)
    ((), ("a", "b"), False, {"a", "b"}, {"a": "new", "b": "new"}),
    (("a",), ("a", "b"), False, {"b"}, {"a": "old", "b": "new"}),
    (("a", "b"), ("a", "b"), False, set(), {"a": "old", "b": "old"}),
    (("a",), ("a", "b"), True, {"a", "b"}, {"a": "new", "b": "new"}),
]


@pytest.mark.parametrize(("existing", "incoming", "update", "returned", "names"), CASES)
def test_insert_or_ignore_and_upsert_return_the_rows_written(existing, incoming, update, returned, names):
    if existing:
        insert_returning(Tenant, _rows(*existing, name="old"), conflict_fields=["key"])
    written = insert_returning(
        Tenant, _rows(*incoming, name="new"), conflict_fields=["key"],
        update_fields=["name"] if update else (), returning=("id", "key"),
    )
    assert {row["key"] for row in written} == returned
    assert all(isinstance(row["id"], int) for row in written)
    assert dict(Tenant.objects.values_list("key", "name")) == names
    assert Tenant.objects.get(key="a").traits == {"k": "a"}


def test_large_inputs_are_chunked_and_all_written():
    written = insert_returning(Tenant, _rows(*[f"t{i}" for i in range(1200)]), conflict_fields=["key"])
    assert len(written) == 1200 == Tenant.objects.count()


def test_an_empty_input_writes_nothing():
    assert insert_returning(Tenant, [], conflict_fields=["key"]) == []
