"""Storing one chunk of parsed lines: signals in bulk, identify/group calls set-based, aliases.

Lines whose idempotency key is already stored are counted as duplicates and
skipped before anything else runs, so a re-run touches no user. A line that
cannot be applied (an identity conflict, a value the database refuses) is
isolated by halving the chunk and rejected alone; its neighbours are stored.
"""

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.db import DataError, IntegrityError, transaction

from ..identity import IdentityConflict
from ..ingest import SignalInput, Source, ingest_signals
from ..models import Signal
from ..people import alias
from .formats import AliasChange, Item, key_of
from .reader import RawRecord
from .users import UserChange, apply_user_changes

# Errors that belong to one line's data; anything else (a lost connection, a bug,
# a crash) propagates and leaves the chunk uncommitted, to be resumed.
LINE_ERRORS = (IdentityConflict, DataError)
KEY_QUERY_CHUNK = 500
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
    unique: dict[str, Pair] = {}
    for record, item in pairs:
        if key_of(item) in unique:
            outcome.duplicates += 1
        else:
            unique[key_of(item)] = (record, item)
    stored = existing_keys(list(unique))
    fresh = [pair for key, pair in unique.items() if key not in stored]
    outcome.duplicates += len(unique) - len(fresh)

    changes = [p for p in fresh if isinstance(p[1], UserChange)]
    signals = [p for p in fresh if isinstance(p[1], SignalInput)]
    aliases = [p for p in fresh if isinstance(p[1], AliasChange)]
    for part in by_identifiers(changes):
        outcome.add(isolated(part, lambda items: (len(apply_user_changes(items, now=now)), [])))
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


def existing_keys(keys: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(keys), KEY_QUERY_CHUNK):
        found.update(
            Signal.objects.filter(idempotency_key__in=keys[start : start + KEY_QUERY_CHUNK])
            .values_list("idempotency_key", flat=True)
        )
    return found


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


def _ingest(items: list[SignalInput], now: datetime) -> tuple[int, list]:
    result = ingest_signals(items, source=Source.IMPORT, now=now)
    return result.accepted, [(entry["index"], entry["errors"]) for entry in result.rejected]


def _alias(change: AliasChange, now: datetime) -> tuple[int, list]:
    """`people.alias` with the line's key, as history.

    Aliasing an id to itself changes nothing and stores nothing (a duplicate),
    and so does a line a concurrent import stored first (its merge is undone).
    """
    if change.previous_id == change.user_id:
        return 0, []
    try:
        with transaction.atomic():
            alias(
                change.previous_id, change.user_id, now=now, idempotency_key=change.key,
                occurred_at=change.occurred_at or now, realtime=False,
            )
    except IntegrityError:
        if Signal.objects.filter(idempotency_key=change.key).exists():
            return 0, []
        raise
    return 1, []


def _errors_of(exc: Exception) -> list[dict]:
    if isinstance(exc, IdentityConflict):
        return [{"field": "user", "message": str(exc)}]
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return [{"field": "(line)", "message": f"the database refused it: {first}"}]
