"""Bringing stored values up to date: lazily for one user, set-based for many.

`refresh_chunk` is the one engine: for a chunk of users it reads the stored
rows (one query), picks the pairs that are missing or expired (all of them
when forced), runs each feature group that has such a pair once for the users
that need it, and writes the answers conditionally (profiles/store.py). A
group that raises is isolated in a savepoint and reported; the others still
write. `refresh_expired` and `rebuild` walk a users queryset in primary-key
chunks with it, so any number of users costs a bounded number of queries per
chunk.
"""

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction

from . import registry, store
from .registry import CATEGORICAL, Feature

log = logging.getLogger("pulse.profiles")
DEFAULT_BATCH = 1000


def is_fresh(stored: store.Stored | None, feature: Feature, now: datetime) -> bool:
    """Fresh until `computed_at + ttl`; expired exactly then (`computed_at + ttl <= now`)."""
    return stored is not None and stored.computed_at is not None and stored.computed_at + feature.ttl > now


@dataclass
class ChunkResult:
    users: int = 0
    computed: int = 0  # pairs computed
    written: int = 0
    refused: int = 0  # lost to an invalidation that came in meanwhile
    failed_groups: list[str] = field(default_factory=list)
    # What the computations answered for every computed pair, written or not.
    answers: dict[tuple[int, str], store.Computed] = field(default_factory=dict)
    written_pairs: set[tuple[int, str]] = field(default_factory=set)
    failed_pairs: set[tuple[int, str]] = field(default_factory=set)

    def add(self, other: "ChunkResult") -> None:
        self.users += other.users
        self.computed += other.computed
        self.written += other.written
        self.refused += other.refused
        self.failed_groups.extend(g for g in other.failed_groups if g not in self.failed_groups)


def as_columns(feature: Feature, value) -> tuple[float | None, str | None]:
    """A computed answer as the row's (value, value_text)."""
    if value is None:
        return None, None
    if feature.dtype == CATEGORICAL:
        return None, str(value)[:500]
    return float(value), None


def refresh_chunk(
    user_ids: Sequence[int], features: Sequence[Feature], now: datetime, *, force: bool = False,
    stored: dict[tuple[int, str], store.Stored] | None = None,
) -> ChunkResult:
    """Recompute the missing or expired (or, forced, all) `features` of `user_ids`."""
    result = ChunkResult(users=len(user_ids))
    if stored is None:
        stored = store.read(user_ids, [f.name for f in features])
    needed: dict[registry.FeatureGroup, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for feature in features:
        for uid in user_ids:
            if force or not is_fresh(stored.get((uid, feature.name)), feature, now):
                needed[feature.group][feature.name].append(uid)
    rows: list[store.Computed] = []
    for group, by_feature in needed.items():
        users = sorted({uid for uids in by_feature.values() for uid in uids})
        answer = _run_group(group, users, now, result)
        if answer is None:
            result.failed_pairs.update((uid, name) for name, uids in by_feature.items() for uid in uids)
            continue
        for name, uids in by_feature.items():
            feature = registry.get(name)
            for uid in uids:
                value, text = as_columns(feature, answer[name].get(uid))
                generation = stored.get((uid, name), store.ABSENT).generation
                rows.append(store.Computed(uid, name, value, text, now, generation))
    result.computed = len(rows)
    result.answers = {(r.user_id, r.name): r for r in rows}
    result.written_pairs = store.write(rows)
    result.written = len(result.written_pairs)
    result.refused = result.computed - result.written
    return result


def _run_group(group, users, now, result: ChunkResult):
    try:
        with transaction.atomic():  # a failing query must not poison the caller's transaction
            return group.run(users, now)
    except Exception as exc:  # noqa: BLE001 - one broken group must not stop the others
        log.exception("event=profile_group_failed group=%s users=%d error_type=%s",
                      group.name, len(users), type(exc).__name__)
        result.failed_groups.append(group.name)
        return None


def user_id_chunks(users_queryset, batch_size: int) -> Iterable[list[int]]:
    """The queryset's primary keys in ascending chunks (keyset, never OFFSET)."""
    last = None
    ids = users_queryset.order_by("pk").values_list("pk", flat=True)
    while True:
        chunk = list((ids.filter(pk__gt=last) if last is not None else ids)[:batch_size])
        if not chunk:
            return
        yield chunk
        last = chunk[-1]


def refresh_users(
    users_queryset, now: datetime, *, features: Iterable[str] | None = None, force: bool = False,
    batch_size: int = DEFAULT_BATCH, progress: Callable[[ChunkResult], None] | None = None,
) -> ChunkResult:
    selected = registry.select(features)
    total = ChunkResult()
    for chunk in user_id_chunks(users_queryset, batch_size):
        done = refresh_chunk(chunk, selected, now, force=force)
        total.add(done)
        if progress:
            progress(done)
    return total


def refresh_expired(features, users_queryset, now: datetime, *,
                    batch_size: int = DEFAULT_BATCH) -> ChunkResult:
    """Bring the named features of these users up to date (missing or expired only), set-based.

    The entry point bucket criteria call before they join ProfileFeatureValue in SQL. A name
    the registry does not declare has no computation: its stored rows are read as they are."""
    known = [name for name in features if name in registry.features()]
    if not known:
        return ChunkResult()
    return refresh_users(users_queryset, now, features=known, batch_size=batch_size)


def rebuild(users_queryset, now: datetime, *, features: Iterable[str] | None = None,
            stale_only: bool = False, batch_size: int = DEFAULT_BATCH, range_size: int | None = None,
            set_based: bool = True, progress: Callable[[ChunkResult], None] | None = None) -> ChunkResult:
    """Recompute every (or every stale) value of these users.

    Set-based by default: groups with an SQL form are computed in SQL over ranges of
    `range_size` users and written in transactions of `batch_size` users
    (profiles/set_refresh.py); the others, or all with `set_based=False`, in chunks of
    `batch_size` users through refresh_chunk."""
    if not set_based:
        return refresh_users(users_queryset, now, features=features, force=not stale_only,
                             batch_size=batch_size, progress=progress)
    from .set_refresh import DEFAULT_RANGE, rebuild_set_based  # it builds on this module

    return rebuild_set_based(users_queryset, now, registry.select(features), stale_only=stale_only,
                             range_size=range_size or DEFAULT_RANGE, batch_size=batch_size,
                             progress=progress)
