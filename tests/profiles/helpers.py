"""Small builders for the profile tests: signals straight into the log (no drain)."""

from datetime import UTC, datetime

from engagement.models import Signal

NOW = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)


def signal(user, name, at, *, source=Signal.Source.API, **fields):
    return Signal.objects.create(user=user, name=name, occurred_at=at, received_at=at, source=source,
                                 **fields)


def feedback(user, at, action=None, dwell_ms=None, **properties):
    if action is not None:
        properties["action"] = action
    if dwell_ms is not None:
        properties["dwell_ms"] = dwell_ms
    return signal(user, "tip.feedback", at, properties=properties)
