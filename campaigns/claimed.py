"""A claimed batch as plain rows: what the gate, the renderer and the channels read.

Loading a batch as `Message` and `EndUser` model instances cost about a tenth
of delivery's Python time; these slotted objects carry only the columns
delivery reads, under the same attribute names (`message.user.locale`,
`message.template.key`, …), from one query joining the messages to their users
with the ids bound as one parameter (campaigns/id_lists.py). Template versions
(a batch uses a few) are still model instances.
"""

import json
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import connection
from django.utils.dateparse import parse_datetime
from django.utils.timezone import is_aware, make_aware

from engagement.models import EndUser

from .id_lists import ids_match
from .models import Message, Preference, TemplateVersion


@dataclass(slots=True)
class Recipient:
    """The user of a claimed message: the fields rendering, the gate and refs read."""

    id: int
    external_id: str | None
    anonymous_id: str | None
    email: str | None
    properties: dict
    locale: str
    timezone: str
    deleted_at: datetime | None

    @property
    def pk(self) -> int:
        return self.id


@dataclass(slots=True)
class ClaimedMessage:
    id: int
    user_id: int
    user: Recipient
    channel: str
    category: str
    source: str
    attempts: int
    context: dict
    destination: str
    template_version_id: int
    template_version: TemplateVersion | None = None
    template: object = None

    @property
    def pk(self) -> int:
        return self.id


MESSAGE_COLUMNS = ("id", "user_id", "channel", "category", "source", "attempts", "context", "destination",
                   "template_version_id")
USER_COLUMNS = ("external_id", "anonymous_id", "email", "properties", "locale", "timezone", "deleted_at")


def load(token: str | None, ids: list[int]) -> list[ClaimedMessage]:
    """The batch's messages still held under `token` (or, with None, all of `ids`: the
    caller holds them locked), by id, with their users and template versions: two
    queries whatever the batch size."""
    qn = connection.ops.quote_name
    where, params = ids_match(f"m.{qn('id')}", ids)
    if token is not None:
        where, params = f"{where} AND m.{qn('lease_token')} = %s", [*params, token]
    sql = f"SELECT {_columns()} FROM {_tables()} WHERE {where} ORDER BY m.{qn('id')}"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        messages, _prefs = _build(cursor.fetchall())
    attach_versions(messages)
    return messages


def pick(now: datetime, size: int, *, after: tuple | None = None
         ) -> tuple[list[ClaimedMessage], dict[int, Preference], tuple | None]:
    """Up to `size` due messages (queued and due, or `sending` with a lapsed lease) in claim
    order, locked until the transaction ends (`FOR UPDATE OF m SKIP LOCKED` on PostgreSQL:
    rows another worker holds are passed over), with their users and the users'
    preferences (user id → preference, for those who have one): one query. The pick, the
    load and the gate's preference read were three statements before, each probing the same
    500 rows. Template versions are not attached (`attach_versions`). `after`: a claim key
    ((next_attempt_at, id)) to continue after; the third value is the last row's key."""
    qn = connection.ops.quote_name
    lock = " FOR UPDATE OF m SKIP LOCKED" if connection.vendor == "postgresql" else ""
    adapt = connection.ops.adapt_datetimefield_value
    due_at, pk = f"m.{qn('next_attempt_at')}", f"m.{qn('id')}"
    params = [Message.Status.QUEUED, Message.Status.SENDING, adapt(now)]
    since = ""
    if after is not None:
        since = f" AND ({due_at}, {pk}) > (%s, %s)"
        params += [adapt(after[0]), after[1]]
    sql = (
        f"SELECT {_columns()}, p.{qn('unsubscribed_all')}, p.{qn('categories')}, {due_at} FROM {_tables()}"
        f" LEFT JOIN {qn(Preference._meta.db_table)} p ON p.{qn('user_id')} = m.{qn('user_id')}"
        f" WHERE m.{qn('status')} IN (%s, %s) AND {due_at} <= %s{since}"
        f" ORDER BY {due_at}, {pk} LIMIT %s{lock}"
    )
    with connection.cursor() as cursor, _in_claim_order(cursor):
        cursor.execute(sql, [*params, size])
        rows = cursor.fetchall()
    messages, prefs = _build(rows, with_preferences=True)
    return messages, prefs, ((_datetime(rows[-1][18]), rows[-1][0]) if rows else None)


@contextmanager
def _in_claim_order(cursor):
    """PostgreSQL plans the pick as a walk of the due index in claim order, whatever its
    statistics say: sorting is off for this one statement (SET LOCAL, then back to the
    session's value).

    Messages are queued in bursts and delivered at once, before autovacuum has analyzed
    them, and the keyset condition `(next_attempt_at, id) > …` lies past the histogram of
    the last analysis: PostgreSQL then estimates a dozen due rows, joins and sorts every due
    message (95,000 at the benchmark's second batch, 0.6 s) for each batch of 500, where the
    index walk stops after 500. With sorting off the ordered index scan is the only plan left.
    """
    if connection.vendor != "postgresql" or not connection.in_atomic_block:
        yield
        return
    cursor.execute("SET LOCAL enable_sort = off")
    yield  # on an error the transaction is rolled back, and the setting with it
    cursor.execute("SET LOCAL enable_sort TO DEFAULT")


def attach_versions(messages: list[ClaimedMessage]) -> None:
    """Give each message its template version and template: one query for the batch."""
    versions = TemplateVersion.objects.select_related("template").in_bulk(
        {m.template_version_id for m in messages})
    for message in messages:
        version = versions[message.template_version_id]
        message.template_version, message.template = version, version.template


def _columns() -> str:
    qn = connection.ops.quote_name
    return ", ".join([f"m.{qn(c)}" for c in MESSAGE_COLUMNS] + [f"u.{qn(c)}" for c in USER_COLUMNS])


def _tables() -> str:
    qn = connection.ops.quote_name
    return (f"{qn(Message._meta.db_table)} m JOIN {qn(EndUser._meta.db_table)} u"
            f" ON u.{qn('id')} = m.{qn('user_id')}")


def _build(rows: list, *, with_preferences: bool = False) -> tuple[list[ClaimedMessage], dict]:
    """Rows of `_columns()` (and, `with_preferences`, the preference's two columns) as
    messages, and user id → Preference (unsaved, only what the gate reads)."""
    context_of = _json_decoder(Message, "context")
    properties_of = _json_decoder(EndUser, "properties")
    categories_of = _json_decoder(Preference, "categories")
    messages, prefs = [], {}
    for row in rows:
        (pk, user_id, channel, category, source, attempts, context, destination, version_id,
         ext, anon, email, props, locale, tz, deleted) = row[:16]
        user = Recipient(user_id, ext, anon, email, properties_of(props), locale, tz, _datetime(deleted))
        messages.append(ClaimedMessage(pk, user_id, user, channel, category, source, attempts,
                                       context_of(context), destination, version_id))
        if with_preferences and row[16] is not None and user_id not in prefs:
            prefs[user_id] = Preference(user_id=user_id, unsubscribed_all=bool(row[16]),
                                        categories=categories_of(row[17]))
    return messages, prefs


def _json_decoder(model, name: str):
    """The field's decoding of a raw column value (a str on both backends with Django):
    plain `json.loads` when the field has no decoder of its own."""
    field = model._meta.get_field(name)
    if field.decoder is not None:
        return lambda value: field.from_db_value(value, None, connection)

    def decode(value):
        if value is None:
            return value
        try:
            return json.loads(value)
        except json.JSONDecodeError:  # as Django does
            return value
    return decode


def _datetime(value):
    """A raw timestamp column as an aware datetime (SQLite hands back text)."""
    if value is None or isinstance(value, datetime):
        return value
    parsed = parse_datetime(value)
    return parsed if is_aware(parsed) else make_aware(parsed, UTC)
