"""Channels are pluggable classes named in settings (PULSE_CHANNELS: name → dotted class).

A channel gets the claimed message and what was rendered for it and answers
an `Outcome`. `stores_only` channels (in-app) deliver by recording the
outcome: that one conditional update is the delivery, so it happens exactly
once. Every other channel sends the message's stable id (`message_ref`) so
receivers can deduplicate the retries of an at-least-once delivery.
"""

from dataclasses import dataclass
from functools import cache

from django.conf import settings
from django.utils.module_loading import import_string


@dataclass(frozen=True)
class Outcome:
    ok: bool
    provider_id: str = ""
    error: str = ""
    retryable: bool = False


class Channel:
    name = ""
    stores_only = False

    def send(self, message, rendered) -> Outcome:  # pragma: no cover - interface
        raise NotImplementedError


def message_ref(message) -> str:
    """The stable id a message carries in every external send."""
    return f"msg_{message.pk}"


@cache
def _channel(path: str) -> Channel:
    return import_string(path)()


def get_channel(name: str) -> Channel:
    return _channel(settings.PULSE_CHANNELS[name])
