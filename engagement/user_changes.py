"""Identify and group calls, set-based: the one implementation of their rules.

`apply_user_changes` takes many identify/group changes and applies them with a
number of statements that does not grow with the batch: identities resolved
by `identity.resolve_users`, properties, time zones, locales and opt-outs
patched with one UPDATE, tenants created and patched, memberships joined,
and one `$identify` / `$group` system signal per change written by
`ingest.record_system_signals`. The native and Segment APIs and the admin go
through it as a batch of one (`people.identify`, `people.group`), imports a
chunk at a time; so a user identified by the API and by an import ends in
the same state with the same system signals.

The rules: a properties patch is shallow and `null` deletes a key; time zone,
locale and opt-out are set when given; a membership keeps its earliest join
date and takes the last role given; a tenant's name is set when given and its
traits are patched by `$group`; a user an import creates existed at least
since its oldest record (`first_seen_at`).
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from .bulk import insert_returning
from .identity import Identifiers, Resolution, apply_properties_patch, refresh_primary_tenants, resolve_users
from .ingest import PRIMARY_TENANT, SystemSignal, record_system_signals
from .models import EndUser, Membership, Tenant
from .tenancy import ensure_tenants

IDENTIFY = "$identify"
GROUP = "$group"
USER_FIELDS = ("properties", "timezone", "locale", "reengagement_opt_out", "first_seen_at")


@dataclass(frozen=True)
class TenantLink:
    key: str
    name: str | None = None
    joined_at: datetime | None = None
    role: str | None = None


@dataclass
class UserChange:
    """One identify (or group) call: who, what to patch, and the key of its system signal.

    `apply_user_changes` fills in the outcome: `user`, `created`, `merged_ids`,
    `changed` and whether its system signal was `written` (False when its key
    was already stored).
    """

    ids: Identifiers
    key: str | None = None
    signal_name: str = IDENTIFY
    occurred_at: datetime | None = None
    properties: dict | None = None
    timezone: str | None = None
    locale: str | None = None
    reengagement_opt_out: bool | None = None
    tenants: tuple[TenantLink, ...] = ()
    # For `$group`: a patch of the (single) tenant's traits.
    tenant_traits: dict | None = None
    # What the client sent under `key` (idempotency.py).
    request_hash: str | None = None
    user: EndUser | None = None
    created: bool = False
    merged_ids: list[int] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    written: bool = False


def apply_user_changes(
    changes: Sequence[UserChange], *, now: datetime, actor: str, realtime: bool
) -> int:
    """Apply `changes` in order; return how many system signals were written.

    Must run inside a transaction. Raises `IdentityConflict` when one of the
    identities cannot be resolved (a caller with many changes isolates the
    culprit). `realtime` is False for history (imports): their system signals
    update derived state but never fire reactions.
    """
    if not changes:
        return 0
    resolutions: dict[Identifiers, Resolution] = {}
    resolve_users([c.ids for c in changes], now=now, resolutions=resolutions)
    users = _live_users({r.user.pk for r in resolutions.values()})
    _credit_resolutions(changes, resolutions, users)
    created = {users[r.user.pk].pk for r in resolutions.values() if r.created}

    _patch_users(changes, created)
    tenants = _patch_tenants(changes, now)
    _join_tenants(changes, tenants, now)

    signals = [_system_signal(change, tenants, actor=actor, realtime=realtime) for change in changes]
    written = {row["idempotency_key"] for row in record_system_signals(signals, now=now)}
    for change in changes:
        change.written = change.key is None or change.key in written
    return sum(change.written for change in changes)


def _credit_resolutions(changes, resolutions, users) -> None:
    """Each identity's creation, merges and filled identifiers go to its first change."""
    credited: set[Identifiers] = set()
    for change in changes:
        resolution = resolutions[change.ids]
        change.user = users[resolution.user.pk]
        first = change.ids not in credited
        credited.add(change.ids)
        change.created = resolution.created and first
        change.merged_ids = list(resolution.merged_ids) if first else []
        change.changed = list(resolution.changed_fields) if first else []
        change.written = False


def _live_users(pks: set[int]) -> dict[int, EndUser]:
    """pk → the live user it is now (following merges made while resolving the batch).

    One instance per live user, so patches of two changes naming the same user add up.
    Merges keep `merged_into` pointing at the current survivor, so one hop (one
    more query at most) reaches it.
    """
    loaded = EndUser.objects.in_bulk(list(pks))
    hops = {u.merged_into_id for u in loaded.values() if u.deleted_at and u.merged_into_id} - set(loaded)
    if hops:
        loaded.update(EndUser.objects.in_bulk(list(hops)))
    live = {}
    for pk in pks:
        user = loaded[pk]
        if user.deleted_at is not None and user.merged_into_id is not None:
            user = loaded[user.merged_into_id]
        live[pk] = user
    return live


def _patch_users(changes, created: set[int]) -> None:
    dirty: dict[int, EndUser] = {}
    fields: set[str] = set()
    for change in changes:
        user = change.user
        patched = []
        if change.properties:
            merged = apply_properties_patch(user.properties, change.properties)
            if merged != user.properties:
                user.properties = merged
                patched.append("properties")
        for name in ("timezone", "locale", "reengagement_opt_out"):
            value = getattr(change, name)
            if value is not None and getattr(user, name) != value:
                setattr(user, name, value)
                patched.append(name)
        # A user created by this batch existed at least since its oldest record.
        if user.pk in created and change.occurred_at and change.occurred_at < user.first_seen_at:
            user.first_seen_at = change.occurred_at
            dirty[user.pk] = user
            fields.add("first_seen_at")
        if patched:
            change.changed.extend(patched)
            dirty[user.pk] = user
            fields.update(patched)
    if dirty:
        EndUser.objects.bulk_update(list(dirty.values()), [f for f in USER_FIELDS if f in fields])


def _patch_tenants(changes, now: datetime) -> dict[str, Tenant]:
    tenants = ensure_tenants({link.key for c in changes for link in c.tenants}, now=now)
    dirty: dict[int, Tenant] = {}
    for change in changes:
        for link in change.tenants:
            tenant = tenants[link.key]
            if link.name and tenant.name != link.name:
                tenant.name = link.name
                dirty[tenant.pk] = tenant
            if change.tenant_traits:
                merged = apply_properties_patch(tenant.traits, change.tenant_traits)
                if merged != tenant.traits:
                    tenant.traits = merged
                    dirty[tenant.pk] = tenant
    if dirty:
        Tenant.objects.bulk_update(list(dirty.values()), ["name", "traits"])
    return tenants


def _join_tenants(changes, tenants: dict[str, Tenant], now: datetime) -> None:
    """Every link joins its tenant: the earliest join date and the last role given win."""
    wanted: dict[tuple[int, int], list] = {}
    for change in changes:
        for link in change.tenants:
            pair = (change.user.pk, tenants[link.key].pk)
            joined = link.joined_at or change.occurred_at or now
            entry = wanted.setdefault(pair, [joined, None])
            entry[0] = min(entry[0], joined)
            if link.role is not None:
                entry[1] = link.role
    if not wanted:
        return
    existing = {
        (m.user_id, m.tenant_id): m
        for m in Membership.objects.filter(
            user_id__in={u for u, _ in wanted}, tenant_id__in={t for _, t in wanted}
        )
    }
    new_rows, dirty, touched = [], [], set()
    for (user_id, tenant_id), (joined, role) in sorted(wanted.items()):
        membership = existing.get((user_id, tenant_id))
        if membership is None:
            new_rows.append(
                {"user_id": user_id, "tenant_id": tenant_id, "role": role or "", "joined_at": joined}
            )
            touched.add(user_id)
            continue
        changed = False
        if role is not None and membership.role != role:
            membership.role, changed = role, True
        if joined < membership.joined_at:
            membership.joined_at, changed = joined, True
            touched.add(user_id)
        if changed:
            dirty.append(membership)
    if new_rows:
        insert_returning(Membership, new_rows, conflict_fields=["user", "tenant"], returning=("id",))
    if dirty:
        Membership.objects.bulk_update(dirty, ["role", "joined_at"])
    if touched:
        refresh_primary_tenants(touched)


def _system_signal(change: UserChange, tenants, *, actor: str, realtime: bool) -> SystemSignal:
    if change.signal_name == GROUP:
        link = change.tenants[0]
        tenant_id = tenants[link.key].pk
        properties = {"tenant": link.key, "traits": change.tenant_traits or {}}
    else:
        tenant_id = PRIMARY_TENANT  # once the links are joined
        properties = {
            "created": change.created,
            "changed": change.changed,
            "merged_user_ids": change.merged_ids,
            "properties": change.properties or {},
        }
    return SystemSignal(
        change.user.pk, change.signal_name, actor, properties, tenant_id=tenant_id,
        occurred_at=change.occurred_at, idempotency_key=change.key, request_hash=change.request_hash,
        realtime=realtime,
    )
