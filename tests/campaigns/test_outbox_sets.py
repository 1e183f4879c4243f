"""The outbox's set path (a MessageSet through PULSE_OUTBOX) writes what the row path writes."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import transaction

from campaigns.models import Message, MessageTemplate
from campaigns.outbox import UnknownTemplate, content_hash, content_hashes, queue_messages
from campaigns.templates_as_code import save_template
from campaigns.wake import wake_delivery
from engagement.outbox_port import MessageSet, QueuedSet, queue
from tests.factories import EndUserFactory
from tests.rows import columns_but_id

from .helpers import make_template

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 5, 4, 6, 0, tzinfo=UTC)
SUFFIX = ":goodbye_sent:2026-05-04"


def stored_messages() -> list[dict]:
    """Every column of every message but its id, in a stable order."""
    return columns_but_id(Message.objects.order_by("user_id", "idempotency_key"))


def rows_for(user_ids, template="tips.weekly", context=None, source="lifecycle", scheduled_for=None):
    return [{"user_id": uid, "template": template, "context": context or {}, "source": source,
             "idempotency_key": f"{uid}{SUFFIX}", "scheduled_for": scheduled_for} for uid in user_ids]


def both_paths(user_ids, **kw) -> tuple[list[dict], list[dict]]:
    """What the row path stores and what the set path stores, each from an empty outbox."""
    stored = []
    for batch in (rows_for(user_ids, **kw), MessageSet(user_ids, kw.get("template", "tips.weekly"),
                                                         kw.get("source", "lifecycle"), SUFFIX,
                                                         context=kw.get("context") or {},
                                                         scheduled_for=kw.get("scheduled_for"))):
        with transaction.atomic():
            queue_messages(batch, now=NOW)
            stored.append(stored_messages())
            transaction.set_rollback(True)
    return stored[0], stored[1]


def test_the_set_path_stores_every_column_the_row_path_stores():
    make_template()
    users = [EndUserFactory().pk for _ in range(4)]
    by_rows, by_set = both_paths(users, context={"plan": "pro", "name": "Zoë \"quoted\" \\ back"})
    assert len(by_rows) == 4 and by_rows == by_set


def test_the_set_path_matches_the_row_path_for_a_scheduled_webhook_message():
    save_template("orders.shipped", {
        "channel": "webhook", "category": "transactional", "default_locale": "en",
        "url": "https://hooks.example.test/pulse",
        "variants": {"en": {"subject": "Shipped", "text": "Hi"}}}, actor="test", now=NOW)
    users = [EndUserFactory().pk for _ in range(3)]
    by_rows, by_set = both_paths(users, template="orders.shipped", scheduled_for=NOW + timedelta(hours=3))
    assert by_rows == by_set and {row["destination"] for row in by_set} == {"https://hooks.example.test/pulse"}


def test_the_content_hashes_of_a_set_are_the_row_paths_hashes():
    for context in ({}, {"plan": "pro"}, {"ü": ["ß", 1.5, None], "nested": {"b": 1, "a": 2}}):
        ids = [1, 42, 2**62]
        assert content_hashes(ids, "tips.weekly", context) == [content_hash(i, "tips.weekly", context)
                                                               for i in ids]


def test_a_set_queued_again_creates_nothing_and_reports_the_existing_messages():
    make_template()
    users = [EndUserFactory().pk for _ in range(3)]
    first = queue(MessageSet(users, "tips.weekly", "lifecycle", SUFFIX), now=NOW)
    again = queue(MessageSet(users, "tips.weekly", "lifecycle", SUFFIX), now=NOW)
    assert first == QueuedSet(created=sorted(users))
    assert again == QueuedSet(existing=sorted(users))
    assert Message.objects.count() == 3


def test_a_set_and_the_rows_share_their_keys():
    make_template()
    users = [EndUserFactory().pk for _ in range(3)]
    queue_messages(rows_for(users[:1]), now=NOW)
    queue_messages(rows_for(users[1:2], context={"other": True}), now=NOW)
    result = queue(MessageSet(users, "tips.weekly", "lifecycle", SUFFIX), now=NOW)
    assert result == QueuedSet(created=[users[2]], existing=[users[0]], conflicts=[users[1]])
    assert Message.objects.count() == 3
    assert Message.objects.get(user_id=users[1]).context == {"other": True}, "a conflict overwrites nothing"


def test_an_empty_set_queues_nothing_and_asks_nothing(django_assert_num_queries):
    with django_assert_num_queries(0):
        assert queue(MessageSet([], "no.such.template", "lifecycle", SUFFIX), now=NOW) == QueuedSet()


def test_a_set_with_repeated_users_queues_each_user_once():
    make_template()
    user = EndUserFactory().pk
    result = queue(MessageSet([user, user, user], "tips.weekly", "lifecycle", SUFFIX), now=NOW)
    assert result.created == [user]
    assert Message.objects.count() == 1


def test_a_set_of_an_unknown_or_archived_template_writes_nothing():
    make_template()
    MessageTemplate.objects.filter(key="tips.weekly").update(archived_at=NOW)
    user = EndUserFactory().pk
    for key in ("tips.weekly", "no.such.template"):
        with pytest.raises(UnknownTemplate, match=key):
            queue(MessageSet([user], key, "lifecycle", SUFFIX), now=NOW)
    assert not Message.objects.exists()


@pytest.mark.parametrize("suffix", ["", None, "x" * 236])
def test_a_set_needs_a_key_suffix_that_fits_the_key_column(suffix):
    with pytest.raises(ValueError, match="key suffix"):
        MessageSet([1], "tips.weekly", "lifecycle", suffix)


@pytest.mark.parametrize("user_ids", [["1; DROP TABLE campaigns_message"], [1.5], [True], [None]])
def test_a_set_refuses_user_ids_that_are_not_integers(user_ids):
    with pytest.raises(TypeError):
        MessageSet(user_ids, "tips.weekly", "lifecycle", SUFFIX)


def test_a_hostile_key_suffix_is_stored_as_text():
    make_template()
    user = EndUserFactory().pk
    suffix = "'); DELETE FROM campaigns_message; --\"{,}\\"
    queue(MessageSet([user], "tips.weekly", "lifecycle", suffix), now=NOW)
    assert Message.objects.get().idempotency_key == f"{user}{suffix}"


def test_delivery_is_woken_after_commit_only_when_a_set_created_messages(django_capture_on_commit_callbacks):
    make_template()
    users = [EndUserFactory().pk for _ in range(2)]
    with django_capture_on_commit_callbacks() as first:
        queue(MessageSet(users, "tips.weekly", "lifecycle", SUFFIX), now=NOW)
    with django_capture_on_commit_callbacks() as again:
        queue(MessageSet(users, "tips.weekly", "lifecycle", SUFFIX), now=NOW)
    assert wake_delivery in first and wake_delivery not in again


def test_a_set_costs_the_same_queries_for_two_users_or_two_hundred(django_assert_max_num_queries):
    make_template()
    few = [EndUserFactory().pk for _ in range(2)]
    many = [u.pk for u in EndUserFactory.create_batch(200)]
    for users in (few, many):
        with django_assert_max_num_queries(2):  # the template, the insert
            queue(MessageSet(users, "tips.weekly", "lifecycle", SUFFIX), now=NOW)
