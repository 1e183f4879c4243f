"""Every signal the messages app appends, in one place (so the write path can change once).

`$preferences` goes through `record_system_signal`. `$engage` needs the
signal's `feature` column (weekly tuning aggregates by it), which
`record_system_signal` does not take yet, so it writes the row through
`write_signal_rows`, the same insert the ingest path uses.
"""

from datetime import datetime

from engagement.ingest import record_system_signal, write_signal_rows
from engagement.models import Signal

ENGAGE = "$engage"
PREFERENCES = "$preferences"


def record_preferences_changed(user, preferences: dict, *, actor: str, now: datetime) -> None:
    record_system_signal(user, PREFERENCES, now=now, properties={**preferences, "actor": actor})


def record_engage(user_id: int, tenant_id: int, *, feature: str, message_id: int, actor: str,
                  now: datetime) -> None:
    """The ENGAGE of a first read, keyed `engage:<message id>` so it exists at most once."""
    record_engages([(user_id, tenant_id, feature, message_id, now, f"engage:{message_id}")],
                   actor=actor, now=now)


def record_engages(reads, *, actor: str, now: datetime, realtime: bool = True) -> None:
    """ENGAGE signals for (user id, tenant id, feature, message id, read at, key) in one insert;
    `realtime=False` for history (the demo), which informs but never acts."""
    write_signal_rows([{
        "user_id": user_id, "tenant_id": tenant_id, "name": ENGAGE, "feature": feature,
        "item": None, "interaction": None,
        "properties": {"message_id": message_id, "actor": actor}, "context": {},
        "occurred_at": read_at, "received_at": now, "idempotency_key": key,
        "request_hash": None, "source": Signal.Source.SYSTEM, "realtime": realtime,
        "failed_at": None, "error": "",
    } for user_id, tenant_id, feature, message_id, read_at, key in reads])
