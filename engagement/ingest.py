"""Writing signals into the log: bulk identity resolution, one transaction, wake the drain.

Every entry point (native API, Segment API, imports, system events) ends here.
A signal is durable when `ingest_signals` returns; the drain is woken after
commit and never waited on. A repeated idempotency key is a duplicate when
the item is the same and an `idempotency_conflict` otherwise (idempotency.py).
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, connection, transaction

from . import idempotency
from .bulk import insert_returning, insert_select, insert_select_statement
from .identity import Identifiers, as_public, resolve_users
from .models import EndUser, Signal, SignalQueue
from .pipeline import enqueue
from .tenancy import ensure_memberships, ensure_tenants
from .wake import wake_drain_on_commit

Source = Signal.Source


@dataclass
class SignalInput:
    ids: Identifiers
    name: str
    occurred_at: datetime | None = None
    properties: dict = field(default_factory=dict)
    context: dict = field(default_factory=dict)
    tenant_key: str | None = None
    feature: str | None = None
    item: str | None = None
    interaction: str | None = None
    idempotency_key: str | None = None
    # What the client sent under `idempotency_key` (idempotency.py); None matches anything.
    request_hash: str | None = None


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[dict] = field(default_factory=list)
    signal_ids: list[int] = field(default_factory=list)

    def as_json(self) -> dict:
        return {"accepted": self.accepted, "duplicates": self.duplicates, "rejected": self.rejected}


def timing_errors(occurred_at: datetime, *, source: str, now: datetime) -> list[dict]:
    """API and Segment signals may not come from the future or from too long ago."""
    if source in (Source.IMPORT, Source.SYSTEM):
        return []
    if occurred_at > now + settings.PULSE_MAX_FUTURE_SKEW:
        return [{"field": "occurred_at", "message": "is more than 5 minutes in the future"}]
    if occurred_at < now - settings.PULSE_MAX_SIGNAL_AGE:
        days = settings.PULSE_MAX_SIGNAL_AGE.days
        return [{"field": "occurred_at", "message": f"is older than the maximum age of {days} days"}]
    return []


def ingest_signals(
    items: Sequence[SignalInput],
    *,
    source: str,
    now: datetime,
    offset: int = 0,
    public: bool = False,
) -> IngestResult:
    """Store `items` as signals; an item failing the timing rules, reusing a key for other
    content, or naming users in conflict is rejected alone.

    `offset` shifts the indexes reported in `rejected` (for callers that
    validated a larger list first). Repeated keys are judged in one query
    before any user is resolved, so a replay touches no user; a request that
    loses a race for a key is judged by hash after the insert.
    """
    result = IngestResult()
    timely: list[tuple[int, SignalInput]] = []
    for index, item in enumerate(items):
        item.occurred_at = item.occurred_at or now
        errors = timing_errors(item.occurred_at, source=source, now=now)
        if errors:
            result.rejected.append({"index": index + offset, "errors": errors})
        else:
            timely.append((index, item))
    if not timely:
        return result
    with transaction.atomic():
        valid = _judge_keys(timely, result, offset)
        if valid and public:
            valid = _drop_email_links(valid)
        if valid:
            conflicts: dict[Identifiers, str] = {}
            users = resolve_users([i.ids for _, i in valid], now=now, conflicts=conflicts)
            if conflicts:
                valid = _reject_conflicts(valid, conflicts, result, offset)
            rows = _rows([i for _, i in valid], users, source=source, now=now)
            written = write_signal_rows(rows, returning=("idempotency_key",))
            _judge_race_losers(valid, rows, written, result, offset)
            result.accepted = len(written)
            result.signal_ids = [row["id"] for row in written]
    result.rejected.sort(key=lambda entry: entry["index"])
    return result


def _drop_email_links(valid) -> list[tuple[int, SignalInput]]:
    """From a public key, an item whose email would link its other ids to the email's owner
    is resolved without that email (identity.as_public)."""
    for (_, item), ids in zip(valid, as_public([item.ids for _, item in valid]), strict=True):
        item.ids = ids
    return valid


def _judge_keys(timely, result: IngestResult, offset: int) -> list[tuple[int, SignalInput]]:
    """Drop the duplicates (counted) and the key conflicts (rejected) before anything is written."""
    verdicts = idempotency.verdicts([(i.idempotency_key, i.request_hash) for _, i in timely])
    kept = []
    for (index, item), verdict in zip(timely, verdicts, strict=True):
        if verdict == idempotency.DUPLICATE:
            result.duplicates += 1
        elif verdict == idempotency.CONFLICT:
            result.rejected.append({"index": index + offset, "errors": [idempotency.conflict_error()]})
        else:
            kept.append((index, item))
    return kept


def _judge_race_losers(valid, rows, written, result: IngestResult, offset: int) -> None:
    """Rows the unique key skipped: another request stored the key meanwhile. One query,
    only when that happened; the loser is a duplicate or a conflict by hash."""
    if len(written) == len(rows):
        return
    lost = {row["idempotency_key"] for row in rows} - {row["idempotency_key"] for row in written}
    stored = idempotency.stored_hashes(sorted(lost))
    for (index, item), row in zip(valid, rows, strict=True):
        key = row["idempotency_key"]
        if key not in lost:
            continue
        if idempotency.same_request(stored.get(key), item.request_hash):
            result.duplicates += 1
        else:
            result.rejected.append({"index": index + offset, "errors": [idempotency.conflict_error()]})


def _reject_conflicts(valid, conflicts, result: IngestResult, offset: int) -> list[tuple[int, SignalInput]]:
    """Items whose identifiers name users with different external ids are rejected alone."""
    kept = []
    for index, item in valid:
        if item.ids in conflicts:
            result.rejected.append({
                "index": index + offset,
                "errors": [{"field": "user", "message": conflicts[item.ids], "code": "identity_conflict"}],
            })
        else:
            kept.append((index, item))
    return kept


def _rows(items: Sequence[SignalInput], users, *, source: str, now: datetime) -> list[dict]:
    tenants = ensure_tenants([i.tenant_key for i in items if i.tenant_key], now=now)
    added = ensure_memberships(
        (users[i.ids].pk, tenants[i.tenant_key].pk, i.occurred_at) for i in items if i.tenant_key
    )
    if added:  # new memberships may have changed primary tenants
        primary = dict(
            EndUser.objects.filter(pk__in={u.pk for u in users.values()}).values_list(
                "pk", "primary_tenant_id"
            )
        )
    else:
        primary = {u.pk: u.primary_tenant_id for u in users.values()}
    horizon = now - settings.PULSE_REALTIME_HORIZON
    rows = []
    for item in items:
        user = users[item.ids]
        tenant_id = tenants[item.tenant_key].pk if item.tenant_key else primary.get(user.pk)
        rows.append(
            {
                "user_id": user.pk,
                "tenant_id": tenant_id,
                "name": item.name,
                "feature": item.feature,
                "item": item.item,
                "interaction": item.interaction,
                "properties": item.properties or {},
                "context": item.context or {},
                "occurred_at": item.occurred_at,
                "received_at": now,
                "idempotency_key": item.idempotency_key,
                "request_hash": item.request_hash if item.idempotency_key else None,
                "source": source,
                "actor": None,  # a client signal's sender is its user
                # History informs, it does not act (docs/ARCHITECTURE.md §1).
                "realtime": source != Source.IMPORT and item.occurred_at >= horizon,
                "failed_at": None,
                "error": "",
            }
        )
    return rows


def write_signal_rows(rows: list[dict], returning: tuple[str, ...] = ("id",)) -> list[dict]:
    """Insert signal rows (a duplicate idempotency key is skipped), queue the new ones for
    the drain, and wake it after commit. Returns the rows written, with `returning` columns."""
    written = insert_returning(
        Signal, rows, conflict_fields=["idempotency_key"], returning=tuple(dict.fromkeys(("id", *returning)))
    )
    enqueue([row["id"] for row in written])
    wake_drain_on_commit()
    return written


PRIMARY_TENANT = object()  # `SystemSignal.tenant_id`: the user's primary tenant, read at write time


@dataclass
class SystemSignal:
    """One of Pulse's own signals (`$identify`, `$group`, `$alias`, …) and who caused it.

    `actor` is `staff:<username>`, `api_key:<name>`, `job:<kind>` or `user_token`.
    `idempotency_key` is the client's (a Segment call's `seg:<messageId>`) or one of
    Pulse's own namespaces (idempotency.py); `request_hash` tells a replay from a reuse.
    """

    user_id: int
    name: str
    actor: str
    properties: dict = field(default_factory=dict)
    tenant_id: int | None | object = PRIMARY_TENANT
    occurred_at: datetime | None = None
    idempotency_key: str | None = None
    request_hash: str | None = None
    realtime: bool = True
    feature: str | None = None  # `$engage` names the feature a user engaged with


def system_signal_row(signal: SystemSignal, *, now: datetime) -> dict:
    """The log row of a system signal: the one builder every writer of system signals uses."""
    if not signal.actor:
        raise ValueError("a system signal needs its actor")
    return {
        "user_id": signal.user_id,
        "tenant_id": signal.tenant_id,
        "name": signal.name,
        "feature": signal.feature,
        "item": None,
        "interaction": None,
        "properties": signal.properties or {},
        "context": {},
        "occurred_at": signal.occurred_at or now,
        "received_at": now,
        "idempotency_key": signal.idempotency_key,
        "request_hash": signal.request_hash if signal.idempotency_key else None,
        "source": Source.SYSTEM,
        "actor": signal.actor,
        "realtime": signal.realtime,
        "failed_at": None,
        "error": "",
    }


# Users whose primary tenant is read per query (SQLite binds at most 32,766 variables).
PRIMARY_LOOKUP_CHUNK = 10_000


def record_system_signals(signals: Sequence[SystemSignal], *, now: datetime) -> list[dict]:
    """Append many system signals in the caller's transaction: one INSERT per
    `bulk.insert_returning` chunk (thousands of rows), one queue insert, one wake-up.

    Every rule that watches users sees the change through this one door. A row
    whose idempotency key is already stored is skipped; the rows written are
    returned with their `id` and `idempotency_key`.
    """
    if not signals:
        return []
    _fill_primary_tenants(signals)
    rows = [system_signal_row(signal, now=now) for signal in signals]
    return write_signal_rows(rows, returning=("idempotency_key",))


def _fill_primary_tenants(signals: Sequence[SystemSignal]) -> None:
    wanted = sorted({s.user_id for s in signals if s.tenant_id is PRIMARY_TENANT})
    primary: dict[int, int | None] = {}
    for start in range(0, len(wanted), PRIMARY_LOOKUP_CHUNK):
        chunk = wanted[start : start + PRIMARY_LOOKUP_CHUNK]
        primary.update(EndUser.objects.filter(pk__in=chunk).values_list("pk", "primary_tenant_id"))
    for signal in signals:
        if signal.tenant_id is PRIMARY_TENANT:
            signal.tenant_id = primary.get(signal.user_id)


def record_system_signal(user: EndUser, name: str, *, now: datetime, actor: str, **fields) -> None:
    """One system signal for `user`: `record_system_signals` with one row (`fields` are
    SystemSignal's: properties, tenant_id, occurred_at, idempotency_key, request_hash, realtime).

    Raises `KeyAlreadyStored` (an IntegrityError) when its idempotency key is already stored,
    so the caller's savepoint rolls the whole call back and it can judge the replay."""
    signal = SystemSignal(user.pk, name, actor, **fields)
    written = record_system_signals([signal], now=now)
    if not written:
        raise KeyAlreadyStored(signal.idempotency_key)


@dataclass(frozen=True)
class SignalSet:
    """The same system signal for many users (a loop's chunk of moved users): what a
    SystemSignal per user would say, with each user's primary tenant and no key."""

    user_ids: Sequence[int]
    name: str
    actor: str
    properties: dict = field(default_factory=dict)
    occurred_at: datetime | None = None
    realtime: bool = True
    feature: str | None = None


def record_system_signal_set(signals: SignalSet, *, now: datetime) -> list[int]:
    """`record_system_signals` for a SignalSet: one `INSERT … SELECT` from the user ids (each
    row's tenant read in SQL), one queue insert, one wake-up; the same column values as
    `system_signal_row`. Returns the new signals' ids."""
    user_ids = sorted(set(signals.user_ids))
    if not user_ids:
        return []
    if any(type(uid) is not int for uid in user_ids):
        raise TypeError("a signal set's user ids are integers")
    shared = system_signal_row(SystemSignal(
        0, signals.name, signals.actor, properties=signals.properties, tenant_id=None,
        occurred_at=signals.occurred_at, realtime=signals.realtime, feature=signals.feature,
    ), now=now)
    del shared["user_id"], shared["tenant_id"]
    users = connection.ops.quote_name(EndUser._meta.db_table)
    tenant = f"(SELECT u.primary_tenant_id FROM {users} AS u WHERE u.id = s.user_id)"
    insert = {"constants": shared, "expressions": {"tenant_id": (tenant, [])}, "returning": ("id",)}
    if connection.vendor == "postgresql":  # the queue rows in the same statement
        ids = _insert_and_enqueue(insert_select_statement(Signal, {"user_id": user_ids}, **insert))
    else:
        ids = [pk for (pk,) in insert_select(Signal, {"user_id": user_ids}, **insert)]
        enqueue(ids)
    wake_drain_on_commit()
    return ids


def _insert_and_enqueue(statement: tuple[str, list]) -> list[int]:
    """PostgreSQL: `WITH written AS (INSERT … RETURNING id) INSERT INTO <queue> …` — what
    `enqueue` does, without the ids' round trip through Python."""
    sql, params = statement
    qn = connection.ops.quote_name
    queue = qn(SignalQueue._meta.db_table)
    column = qn(SignalQueue._meta.get_field("signal").column)
    with connection.cursor() as cursor:
        cursor.execute(f"WITH written AS ({sql}) INSERT INTO {queue} ({column}) SELECT id FROM written"
                       f" ON CONFLICT ({column}) DO NOTHING RETURNING {column}", params)
        return [pk for (pk,) in cursor.fetchall()]


class KeyAlreadyStored(IntegrityError):
    """A single user-changing call whose system signal's idempotency key is already stored."""
