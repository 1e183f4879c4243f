"""The candidate index: which buckets a batch of signals can change, cached per worker.

Real time re-evaluates a user only against the buckets its signals touch:

- an event leaf names the signal (`event: "purchase"`);
- a property leaf reads a property an `$identify` patched (its top-level key);
- lifecycle, profile and tenant leaves, when their system signals arrive
  (`$lifecycle.changed`, `$profile.changed`, `$group`, and any signal carrying
  a tenant, since ingest may have joined the user to it);
- an `in_bucket` leaf, when the named bucket's `$bucket.entered` / `$bucket.left`
  arrives (or its transitions happen earlier in the same batch);
- everything, when users merged (`$alias`, an `$identify` that merged).

The index is built from the enabled dynamic buckets and kept per process,
refreshed when `index_version.current_version()` moves (one read per batch).
Buckets come out in dependency order and in levels, so a bucket named by
`in_bucket` is evaluated before the buckets that name it and the buckets of one
level are evaluated together.
"""

import threading
from dataclasses import dataclass, field
from datetime import timedelta

from .criteria.validation import referenced_buckets
from .index_version import current_version
from .models import Bucket

LIFECYCLE_SIGNAL = "$lifecycle.changed"
PROFILE_SIGNAL = "$profile.changed"
GROUP_SIGNAL = "$group"
IDENTIFY_SIGNAL = "$identify"
ALIAS_SIGNAL = "$alias"
BUCKET_SIGNALS = ("$bucket.entered", "$bucket.left")


@dataclass(frozen=True)
class Reaction:
    key: str
    on: str
    reasons: tuple[str, ...]
    action: str
    target: str


@dataclass(frozen=True)
class BucketSpec:
    """What evaluating and reacting need of a bucket, without touching the database."""

    id: int
    slug: str
    name: str
    kind: str
    criteria: dict | None
    fingerprint: str
    entry_limit: str
    entry_period: timedelta | None
    reactions: tuple[Reaction, ...] = ()
    reevaluate_members: bool = False

    @classmethod
    def of(cls, bucket: Bucket, reactions=None) -> "BucketSpec":
        rows = bucket.reactions.all() if reactions is None else reactions
        return cls(
            id=bucket.pk, slug=bucket.slug, name=bucket.name, kind=bucket.kind, criteria=bucket.criteria,
            fingerprint=bucket.criteria_fingerprint, entry_limit=bucket.entry_limit,
            entry_period=bucket.entry_period, reevaluate_members=bucket.reevaluate_members,
            reactions=tuple(Reaction(r.key, r.on, tuple(r.reasons or ()), r.action, r.target) for r in rows),
        )


@dataclass
class CandidateIndex:
    version: int
    buckets: dict[int, BucketSpec] = field(default_factory=dict)
    order: list[int] = field(default_factory=list)
    levels: list[list[int]] = field(default_factory=list)  # `order` cut where a bucket names an earlier one
    by_event: dict[str, set[int]] = field(default_factory=dict)
    by_property: dict[str, set[int]] = field(default_factory=dict)
    by_system: dict[str, set[int]] = field(default_factory=dict)
    dependents: dict[str, set[int]] = field(default_factory=dict)  # slug → buckets naming it
    tenant_buckets: set[int] = field(default_factory=set)
    any_signal: set[int] = field(default_factory=set)  # profile leaves on features invalidated by `*`

    def add(self, spec: BucketSpec) -> None:
        self.buckets[spec.id] = spec
        for kind, value in leaves(spec.criteria):
            if kind == "event":
                self.by_event.setdefault(value, set()).add(spec.id)
            elif kind == "property":
                self.by_property.setdefault(value.split(".", 1)[0], set()).add(spec.id)
            elif kind == "lifecycle":
                self.by_system.setdefault(LIFECYCLE_SIGNAL, set()).add(spec.id)
            elif kind == "profile":
                self.by_system.setdefault(PROFILE_SIGNAL, set()).add(spec.id)
                self._add_profile_triggers(value, spec.id)
            elif kind == "tenant":
                self.tenant_buckets.add(spec.id)
                for name in (GROUP_SIGNAL, IDENTIFY_SIGNAL):
                    self.by_system.setdefault(name, set()).add(spec.id)
            elif kind == "in_bucket":
                self.dependents.setdefault(value, set()).add(spec.id)


    def _add_profile_triggers(self, feature_name: str, bucket_id: int) -> None:
        """A profile feature changes when a signal its declaration names invalidates it, so
        those signals make the bucket a candidate (`*`: any signal)."""
        for name in profile_invalidators(feature_name):
            if name == "*":
                self.any_signal.add(bucket_id)
            else:
                self.by_event.setdefault(name, set()).add(bucket_id)


def profile_invalidators(feature_name: str) -> tuple[str, ...]:
    """The `invalidated_by` names of a profile feature; `*` when the feature is unknown here
    (a stored name no declaration computes), so such a bucket is never missed."""
    try:
        from profiles.registry import features
    except ImportError:
        return ("*",)
    feature = features().get(feature_name)
    return tuple(feature.invalidated_by) if feature is not None else ("*",)


def leaves(node) -> list[tuple[str, str]]:
    """(kind, name) of every leaf of criteria: the event, property path, slug …"""
    found, stack = [], [node]
    while stack:
        current = stack.pop()
        if isinstance(current, list):
            stack.extend(current)
        elif isinstance(current, dict):
            for kind in ("event", "property", "profile", "lifecycle", "tenant", "in_bucket"):
                if kind in current:
                    value = current[kind]
                    found.append((kind, value if isinstance(value, str) else ""))
            for key in ("all", "any", "not"):
                if key in current:
                    stack.append(current[key])
    return found


def build_index(version: int) -> CandidateIndex:
    """Every enabled dynamic bucket with its reactions: two queries."""
    index = CandidateIndex(version=version)
    buckets = Bucket.objects.filter(enabled=True, kind=Bucket.Kind.DYNAMIC, criteria__isnull=False)
    for bucket in buckets.prefetch_related("reactions").order_by("pk"):
        index.add(BucketSpec.of(bucket))
    index.order = dependency_order(index.buckets)
    index.levels = dependency_levels(index.buckets, index.order)
    return index


def dependency_levels(buckets: dict[int, BucketSpec], order: list[int]) -> list[list[int]]:
    """The ordered ids in levels: level 0 names no bucket, each later level names only buckets
    of earlier ones, so a level's buckets can be evaluated together once the earlier are done."""
    by_slug = {spec.slug: spec.id for spec in buckets.values()}
    depth: dict[int, int] = {}
    for bucket_id in order:
        named = [by_slug[slug] for slug in referenced_buckets(buckets[bucket_id].criteria) if slug in by_slug]
        depth[bucket_id] = 1 + max((depth.get(other, -1) for other in named), default=-1)
    levels: list[list[int]] = [[] for _ in range(1 + max(depth.values(), default=-1))]
    for bucket_id in order:
        levels[depth[bucket_id]].append(bucket_id)
    return levels


def dependency_order(buckets: dict[int, BucketSpec]) -> list[int]:
    """Ids with every bucket after the buckets its in_bucket leaves name (cycles are refused
    at validation; should one slip in, the rest of it keeps id order)."""
    by_slug = {spec.slug: spec.id for spec in buckets.values()}
    placed: list[int] = []
    seen: set[int] = set()

    def visit(bucket_id: int, trail: frozenset) -> None:
        if bucket_id in seen or bucket_id in trail:
            return
        for slug in referenced_buckets(buckets[bucket_id].criteria):
            if slug in by_slug:
                visit(by_slug[slug], trail | {bucket_id})
        seen.add(bucket_id)
        placed.append(bucket_id)

    for bucket_id in sorted(buckets):
        visit(bucket_id, frozenset())
    return placed


_lock = threading.Lock()
_cached: dict[str, CandidateIndex] = {}


def candidate_index() -> CandidateIndex:
    """The process's index, rebuilt when the stored version moved since it was built."""
    version = current_version()
    with _lock:
        index = _cached.get("index")
        if index is not None and index.version == version:
            return index
    index = build_index(version)
    with _lock:
        _cached["index"] = index
    return index


def forget_index() -> None:
    with _lock:
        _cached.clear()


def touched_buckets(signal, index: CandidateIndex) -> set[int]:
    """The buckets one signal can change for its user."""
    touched = set(index.by_event.get(signal.name, ()))
    touched |= index.by_system.get(signal.name, set())
    touched |= index.any_signal
    properties = signal.properties if isinstance(signal.properties, dict) else {}
    if signal.name == IDENTIFY_SIGNAL:
        patch = properties.get("properties")
        for key in patch if isinstance(patch, dict) else ():
            touched |= index.by_property.get(key, set())
        if properties.get("merged_user_ids"):
            return set(index.buckets)
    elif signal.name == ALIAS_SIGNAL:
        return set(index.buckets)
    elif signal.name in BUCKET_SIGNALS and isinstance(properties.get("bucket"), str):
        touched |= index.dependents.get(properties["bucket"], set())
    if signal.tenant_id is not None and signal.source != "system":
        touched |= index.tenant_buckets
    return touched
