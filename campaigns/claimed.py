"""A claimed batch as plain rows: what the gate, the renderer and the channels read.

Loading a batch as `Message` and `EndUser` model instances cost about a tenth
of delivery's Python time; these slotted objects carry only the columns
delivery reads, under the same attribute names (`message.user.locale`,
`message.template.key`, …), from one query joining the messages to their users
with the ids bound as one parameter (campaigns/id_lists.py). Template versions
(a batch uses a few) are still model instances.
"""

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import connection
from django.utils.dateparse import parse_datetime
from django.utils.timezone import is_aware, make_aware

from engagement.models import EndUser

from .id_lists import ids_match
from .models import Message, TemplateVersion


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
    message_table, user_table = qn(Message._meta.db_table), qn(EndUser._meta.db_table)
    where, params = ids_match(f"m.{qn('id')}", ids)
    columns = [f"m.{qn(c)}" for c in MESSAGE_COLUMNS] + [f"u.{qn(c)}" for c in USER_COLUMNS]
    if token is not None:
        where, params = f"{where} AND m.{qn('lease_token')} = %s", [*params, token]
    sql = (
        f"SELECT {', '.join(columns)} FROM {message_table} m JOIN {user_table} u ON u.{qn('id')} = m.user_id"
        f" WHERE {where} ORDER BY m.{qn('id')}"
    )
    context_of = _json_decoder(Message, "context")
    properties_of = _json_decoder(EndUser, "properties")
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    messages = [
        ClaimedMessage(
            id=pk, user_id=user_id, channel=channel, category=category, source=source, attempts=attempts,
            context=context_of(context), destination=destination, template_version_id=version_id,
            user=Recipient(id=user_id, external_id=ext, anonymous_id=anon, email=email,
                           properties=properties_of(props), locale=locale, timezone=tz,
                           deleted_at=_datetime(deleted)),
        )
        for (pk, user_id, channel, category, source, attempts, context, destination, version_id,
             ext, anon, email, props, locale, tz, deleted) in rows
    ]
    versions = TemplateVersion.objects.select_related("template").in_bulk(
        {m.template_version_id for m in messages})
    for message in messages:
        version = versions[message.template_version_id]
        message.template_version, message.template = version, version.template
    return messages


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
