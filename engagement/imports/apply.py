"""Storing one chunk of parsed lines: signals in bulk, identify/group calls set-based, aliases.

Lines whose idempotency key is already stored are judged before anything else
runs: with the same request hash they are duplicates, skipped, so a re-run
touches no user; with another hash (the key was used for different content,
live or in this file) they are rejected with `idempotency_conflict`. A line that
cannot be applied (an identity conflict, a value the database refuses) is
isolated by halving the chunk and rejected alone; its neighbours are stored.
"""

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.db import DataError, IntegrityError, transaction

from .. import idempotency
from ..identity import IdentityConflict
from ..ingest import SignalInput, Source, ingest_signals
from ..people import alias
from ..user_changes import UserChange, apply_user_changes
from .formats import AliasChange, Item, hash_of, key_of
from .reader import RawRecord

# Errors that belong to one line's data; anything else (a lost connection, a bug,
# a crash) propagates and leaves the chunk uncommitted, to be resumed.
LINE_ERRORS = (IdentityConflict, DataError)
# Who the system signals of imported lines name as their cause.
ACTOR = "job:import"
# Distinct identifiers resolved per `resolve_users` call, to keep its IN lists bounded.
PAIR_BUDGET = 3000

Pair = tuple[RawRecord, Item]


@dataclass
class ChunkOutcome:
    imported: int = 0
    duplicates: int = 0
    rejected: list[tuple[RawRecord, list[dict]]] = field(default_factory=list)

    def add(self, other: "ChunkOutcome") -> None:
        self.imported += other.imported
        self.duplicates += other.duplicates
        self.rejected.extend(other.rejected)


def apply_items(pairs: Sequence[Pair], *, now: datetime) -> ChunkOutcome:
    """Store a chunk of parsed lines (inside the caller's transaction)."""
    outcome = ChunkOutcome()
    fresh: list[Pair] = []
    verdicts = idempotency.verdicts([(key_of(item), hash_of(item)) for _, item in pairs])
    for pair, verdict in zip(pairs, verdicts, strict=True):
        if verdict == idempotency.NEW:
            fresh.append(pair)
        elif verdict == idempotency.DUPLICATE:
            outcome.duplicates += 1
        else:
            outcome.rejected.append((pair[0], [_conflict(key_of(pair[1]))]))

    changes = [p for p in fresh if isinstance(p[1], UserChange)]
    signals = [p for p in fresh if isinstance(p[1], SignalInput)]
    aliases = [p for p in fresh if isinstance(p[1], AliasChange)]
    for part in by_identifiers(changes):
        outcome.add(isolated(part, lambda items: (_apply_changes(items, now), [])))
    for part in by_identifiers(signals):
        outcome.add(isolated(part, lambda items: _ingest(items, now)))
    for pair in aliases:
        outcome.add(isolated([pair], lambda items: _alias(items[0], now)))
    return outcome


def by_identifiers(pairs: Sequence[Pair], budget: int = PAIR_BUDGET) -> Iterator[list[Pair]]:
    """Consecutive runs of `pairs` naming at most `budget` distinct identifiers each."""
    run: list[Pair] = []
    seen: set[tuple[str, str]] = set()
    for pair in pairs:
        mine = set(pair[1].ids.pairs())
        if run and len(seen | mine) > budget:
            yield run
            run, seen = [], set()
        run.append(pair)
        seen |= mine
    if run:
        yield run


def isolated(pairs: Sequence[Pair], apply: Callable) -> ChunkOutcome:
    """Apply all pairs in a savepoint; when one line's data fails, halve until it is alone.

    `apply(items)` returns (how many were written, [(index, errors)] it refused).
    """
    if not pairs:
        return ChunkOutcome()
    try:
        with transaction.atomic():
            written, refused = apply([item for _, item in pairs])
    except LINE_ERRORS as exc:
        if len(pairs) == 1:
            return ChunkOutcome(rejected=[(pairs[0][0], _errors_of(exc))])
        middle = len(pairs) // 2
        outcome = isolated(pairs[:middle], apply)
        outcome.add(isolated(pairs[middle:], apply))
        return outcome
    rejected = [(pairs[index][0], errors) for index, errors in refused]
    return ChunkOutcome(
        imported=written, duplicates=len(pairs) - written - len(rejected), rejected=rejected
    )


def _apply_changes(items: list[UserChange], now: datetime) -> int:
    """Imported identify/group calls are history: not real-time."""
    return apply_user_changes(items, now=now, actor=ACTOR, realtime=False)


def _ingest(items: list[SignalInput], now: datetime) -> tuple[int, list]:
    result = ingest_signals(items, source=Source.IMPORT, now=now)
    return result.accepted, [(entry["index"], entry["errors"]) for entry in result.rejected]


def _alias(change: AliasChange, now: datetime) -> tuple[int, list]:
    """`people.alias` with the line's key, as history.

    Aliasing an id to itself changes nothing and stores nothing (a duplicate),
    and so does a line a concurrent import stored first (its merge is undone);
    when that line's content differs, this one is an `idempotency_conflict`.
    """
    if change.previous_id == change.user_id:
        return 0, []
    try:
        with transaction.atomic():
            alias(
                change.previous_id, change.user_id, now=now, actor=ACTOR, idempotency_key=change.key,
                request_hash=change.request_hash, occurred_at=change.occurred_at or now, realtime=False,
            )
    except IntegrityError:
        stored = idempotency.stored_hashes([change.key])
        if change.key not in stored:
            raise
        if idempotency.same_request(stored[change.key], change.request_hash):
            return 0, []
        return 0, [(0, [_conflict(change.key)])]
    return 1, []


def _conflict(key: str) -> dict:
    """The error of a line reusing a key: named as the line's shape names its key."""
    field = "messageId" if key.startswith(idempotency.SEGMENT_PREFIX) else "idempotency_key"
    return idempotency.conflict_error(field)


def _errors_of(exc: Exception) -> list[dict]:
    if isinstance(exc, IdentityConflict):
        return [{"field": "user", "message": str(exc)}]
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return [{"field": "(line)", "message": f"the database refused it: {first}"}]
