"""A batch's ids travel as one parameter, and its outcome rows as one array per column,
whatever their number or content."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from campaigns.claimed import load
from campaigns.delivery import claim
from campaigns.held_update import update_held
from campaigns.id_lists import array_literal, id_in, ids_match
from campaigns.models import Message
from campaigns.outbox import queue_messages
from engagement.models import EndUser
from tests.factories import EndUserFactory

from .helpers import make_template

pytestmark = pytest.mark.django_db


def test_an_empty_id_list_matches_nothing():
    EndUserFactory.create_batch(2)
    assert EndUser.objects.filter(id_in("id", [])).count() == 0
    where, params = ids_match("id", [])
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {EndUser._meta.db_table} WHERE {where}", params)
        assert cursor.fetchone()[0] == 0


def test_a_list_of_fifty_thousand_ids_is_one_parameter_and_matches_exactly_the_listed_rows():
    users = EndUserFactory.create_batch(3)
    wanted = [users[0].pk, users[2].pk, *range(10**9, 10**9 + 50_000)]
    with CaptureQueriesContext(connection) as queries:
        found = set(EndUser.objects.filter(id_in("id", wanted)).values_list("pk", flat=True))
    assert found == {users[0].pk, users[2].pk}
    assert len(queries[0]["sql"]) > 50_000  # the literal is in it: client-side binding, one parameter


@pytest.mark.parametrize("bad", [[True], ["1"], ["1); DROP TABLE x; --"], [1.0], [None], [b"1"]])
def test_an_id_list_refuses_anything_but_integers(bad):
    with pytest.raises(TypeError):
        array_literal(bad)
    with pytest.raises(TypeError):
        id_in("id", bad)


def test_an_array_literal_keeps_negative_and_64_bit_ids():
    assert array_literal([-1, 0, 2**63 - 1]) == "{-1,0,9223372036854775807}"


def _claimed(now, n=3):
    make_template()
    user = EndUserFactory(properties={"plan": "x"}, locale="de")
    queue_messages([{"user_id": user.pk, "template": "tips.weekly", "idempotency_key": f"k{i}",
                     "context": {"i": i}} for i in range(n)], now=now - timedelta(minutes=1))
    return claim(now, 100)


HOSTILE = ['a "quoted" \\ back\\slash', "{braces},commas", "NULL", "", "'single' ; DROP", "é\u202e\n\t"]


def test_outcome_rows_round_trip_hostile_text_nulls_and_json_exactly(now):
    token, ids = _claimed(now, len(HOSTILE))
    rows = [{"id": pk, "subject": text, "text": text[::-1], "gated_at": None if i % 2 else now,
             "rendered_actions": [{"id": text, "label": {"nested": [text]}}]}
            for i, (pk, text) in enumerate(zip(ids, HOSTILE, strict=True))]
    done = update_held(rows, token=token, common={"status": "sent", "lease_token": ""})
    assert sorted(done) == ids
    stored = {m.pk: m for m in Message.objects.filter(pk__in=ids)}
    for row in rows:
        message = stored[row["id"]]
        assert (message.subject, message.text, message.status) == (row["subject"], row["text"], "sent")
        assert message.rendered_actions == row["rendered_actions"]
        assert message.gated_at == row["gated_at"]


def test_an_outcome_under_another_token_or_status_updates_nothing(now):
    token, ids = _claimed(now)
    rows = [{"id": pk, "subject": "s"} for pk in ids]
    assert update_held(rows, token="f" * 32, common={"status": "sent"}) == []
    Message.objects.filter(pk=ids[0]).update(status="cancelled")
    assert sorted(update_held(rows, token=token, common={"status": "sent"})) == ids[1:]
    assert Message.objects.get(pk=ids[0]).subject == ""


def test_an_outcome_value_of_the_wrong_type_is_refused_not_written(now):
    token, ids = _claimed(now, 1)
    if connection.vendor != "postgresql":
        pytest.skip("SQLite writes through the ORM field, which converts")
    with pytest.raises(TypeError):
        update_held([{"id": ids[0], "subject": 12}], token=token, common={})
    with pytest.raises(TypeError):
        update_held([{"id": ids[0], "gated_at": now.replace(tzinfo=None)}], token=token, common={})


def test_a_claimed_batch_loads_as_rows_with_their_users_and_versions_in_two_queries(now):
    token, ids = _claimed(now)
    with CaptureQueriesContext(connection) as queries:
        messages = load(token, ids)
    assert len(queries) == 2
    assert [m.pk for m in messages] == ids
    first = messages[0]
    assert first.context == {"i": 0} and first.user.properties == {"plan": "x"}
    assert first.user.locale == "de" and first.user.deleted_at is None
    assert first.template.key == "tips.weekly" and first.template_version.number == 1
    assert load("0" * 32, ids) == []
