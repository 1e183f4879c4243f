"""The insert-with-returned-ids helper behaves the same on PostgreSQL and SQLite."""

import pytest
from django.utils import timezone

from engagement.bulk import insert_returning, update_returning
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


def _tenants(*keys):
    insert_returning(Tenant, _rows(*keys, name="old"), conflict_fields=["key"])
    return dict(Tenant.objects.values_list("key", "id"))


def test_update_returning_gives_each_row_its_own_values_and_returns_the_rows_updated():
    ids = _tenants("a", "b", "c")
    hostile = "x'); DROP TABLE engagement_tenant; --"
    updated = update_returning(
        Tenant,
        [{"id": ids["a"], "name": hostile, "traits": {"n": [1, "two"]}},
         {"id": ids["b"], "name": "B", "traits": {}}],
        common={"created_at": timezone.now()},
    )
    assert sorted(updated) == sorted([ids["a"], ids["b"]])
    rows = {t.key: t for t in Tenant.objects.all()}
    assert (rows["a"].name, rows["a"].traits) == (hostile, {"n": [1, "two"]})
    assert (rows["b"].name, rows["c"].name) == ("B", "old")


def test_update_returning_updates_only_rows_that_meet_its_condition():
    ids = _tenants("a", "b")
    Tenant.objects.filter(key="b").update(name="taken")
    updated = update_returning(
        Tenant, [{"id": ids["a"], "name": "new"}, {"id": ids["b"], "name": "new"}],
        where=('"name" = %s', ["old"]),
    )
    assert updated == [ids["a"]]
    assert dict(Tenant.objects.values_list("key", "name")) == {"a": "new", "b": "taken"}


def test_update_returning_chunks_large_inputs_and_ignores_missing_rows():
    ids = _tenants(*[f"t{i}" for i in range(1200)])
    rows = [{"id": pk, "name": f"n-{key}"} for key, pk in ids.items()] + [{"id": 10**12, "name": "ghost"}]
    assert len(update_returning(Tenant, rows)) == 1200
    assert Tenant.objects.filter(name__startswith="n-t").count() == 1200
    assert update_returning(Tenant, []) == []
