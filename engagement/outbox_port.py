"""The outbox port's vocabulary, on the engagement side: rows, or one set of users.

PULSE_OUTBOX names ONE function (`campaigns.outbox.queue_messages`), called
inside the caller's transaction with either

- rows: mappings of `campaigns.outbox.MessageRow`'s fields, one message each,
  every field free (the API, buckets, campaigns); or
- a `MessageSet`: many users who get the same template, context and source,
  each under the key `<user id><key_suffix>` (a loop's chunk of moved users).
  The outbox writes it as one `INSERT … SELECT` from the ids, with the same
  column values the rows would have produced, so a set costs the database
  work and almost no Python per user.

The set lives here, not in `campaigns`, because the engagement layer builds it
and must not import upwards (docs/ARCHITECTURE.md §2).
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.utils.module_loading import import_string

MAX_KEY_LENGTH = 255
ID_DIGITS = 20  # a bigint's decimal digits: the room a key needs before its suffix


@dataclass(frozen=True)
class MessageSet:
    """These users get `template` from `source`, each keyed `<user id><key_suffix>`."""

    user_ids: Sequence[int]
    template: str
    source: str
    key_suffix: str  # e.g. ":goodbye_sent:2026-05-04"; a set is always keyed (idempotent)
    context: dict = field(default_factory=dict)
    scheduled_for: datetime | None = None

    def __post_init__(self):
        if not isinstance(self.key_suffix, str) or not self.key_suffix:
            raise ValueError("a message set needs a key suffix: its messages are keyed per user")
        if len(self.key_suffix) > MAX_KEY_LENGTH - ID_DIGITS:
            limit = MAX_KEY_LENGTH - ID_DIGITS
            raise ValueError(f"a message set's key suffix is limited to {limit} characters")
        if any(type(uid) is not int for uid in self.user_ids):
            raise TypeError("a message set's user ids are integers")

    def key_of(self, user_id: int) -> str:
        return f"{user_id}{self.key_suffix}"


@dataclass(frozen=True)
class QueuedSet:
    """What the outbox did with a MessageSet, by user id."""

    created: list[int] = field(default_factory=list)
    existing: list[int] = field(default_factory=list)  # the key was stored, same content
    conflicts: list[int] = field(default_factory=list)  # the key was stored with other content


def queue(batch, *, now: datetime):
    """Rows or a MessageSet through PULSE_OUTBOX, in the caller's transaction."""
    return import_string(settings.PULSE_OUTBOX)(batch, now=now)
