"""Every signal the messages app appends, in one place, through the core's one door for
system signals (`engagement.ingest.record_system_signals`), each with its actor."""

from datetime import datetime

from engagement.ingest import SystemSignal, record_system_signal, record_system_signals

ENGAGE = "$engage"
PREFERENCES = "$preferences"


def record_preferences_changed(user, preferences: dict, *, actor: str, now: datetime) -> None:
    record_system_signal(user, PREFERENCES, now=now, actor=actor, properties=preferences)


def record_engage(user_id: int, tenant_id: int, *, feature: str, message_id: int, actor: str,
                  now: datetime) -> None:
    """The ENGAGE of a first read, keyed `engage:<message id>` so it exists at most once."""
    record_engages([(user_id, tenant_id, feature, message_id, now, f"engage:{message_id}")],
                   actor=actor, now=now)


def record_engages(reads, *, actor: str, now: datetime, realtime: bool = True) -> None:
    """ENGAGE signals for (user id, tenant id, feature, message id, read at, key) in one insert;
    `realtime=False` for history (the demo), which informs but never acts."""
    record_system_signals([
        SystemSignal(
            user_id, ENGAGE, actor, properties={"message_id": message_id}, tenant_id=tenant_id,
            occurred_at=read_at, idempotency_key=key, realtime=realtime, feature=feature,
        )
        for user_id, tenant_id, feature, message_id, read_at, key in reads
    ], now=now)
