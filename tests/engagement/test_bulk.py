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


AWKWARD_TEXT = ['say "hi"', "back\\slash", "{a,b}", "NULL", "null", " ", "", "é 漢 🎉", 'end\\"',
                "tab\tnew\nline", "x'); DROP TABLE engagement_tenant; --"]


def test_text_and_json_holding_array_syntax_are_stored_exactly_as_given():
    now = timezone.now()
    rows = [{"key": f"k{i}", "name": text, "traits": {text: [text, None, True, 1.5, {"q": '"'}]},
             "created_at": now} for i, text in enumerate(AWKWARD_TEXT)]
    insert_returning(Tenant, rows, conflict_fields=["key"])
    stored = {t.key: t for t in Tenant.objects.all()}
    for row in rows:
        assert (stored[row["key"]].name, stored[row["key"]].traits) == (row["name"], row["traits"])
    update_returning(Tenant, [{"id": stored[row["key"]].pk, "name": row["name"] * 2} for row in rows])
    assert sorted(Tenant.objects.values_list("name", flat=True)) == sorted(text * 2 for text in AWKWARD_TEXT)


def test_nulls_booleans_and_datetimes_in_any_zone_keep_their_values():
    from datetime import timedelta
    from datetime import timezone as tz

    from engagement.models import Signal
    from tests.factories import EndUserFactory

    user, at = EndUserFactory(), timezone.now().astimezone(tz(timedelta(hours=-5, minutes=-30)))
    base = {"user_id": user.pk, "tenant_id": None, "name": "n", "properties": {}, "context": {},
            "occurred_at": at, "received_at": at, "source": "api", "failed_at": None, "error": ""}
    rows = [{**base, "idempotency_key": None, "realtime": False},
            {**base, "idempotency_key": "k", "realtime": True}]
    insert_returning(Signal, rows, conflict_fields=["idempotency_key"])
    stored = list(Signal.objects.order_by("pk").values_list("idempotency_key", "realtime", "occurred_at"))
    assert stored == [(None, False, at), ("k", True, at)]


def test_without_conflict_fields_a_row_breaking_any_unique_key_is_skipped():
    _tenants("a")
    written = insert_returning(Tenant, _rows("a", "b", name="new"), conflict_fields=(), returning=("key",))
    assert [row["key"] for row in written] == ["b"]
    assert dict(Tenant.objects.values_list("key", "name")) == {"a": "old", "b": "new"}
