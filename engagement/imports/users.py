"""Identify and group calls applied to a whole chunk of users at once.

`apply_user_changes` is what `people.identify` / `people.group` do, set-based:
identities are resolved in bulk (`identity.resolve_users`), properties, time
zones and memberships are written with a fixed number of statements, and each
change appends its `$identify` / `$group` system signal under a derived
idempotency key. Imported changes are history: their system signals are not
real-time, so they update derived state but never fire reactions.

Callers drop the changes whose key is already stored *before* calling, so a
re-run neither resolves identities again nor rolls properties back.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Max

from ..bulk import insert_returning
from ..identity import Identifiers, apply_properties_patch, refresh_primary_tenants, resolve_users
from ..ingest import write_signal_rows
from ..models import EndUser, Membership, Signal, Tenant
from ..people import TenantLink
from ..tenancy import ensure_tenants

USER_FIELDS = ("properties", "timezone", "locale", "reengagement_opt_out", "first_seen_at")


@dataclass
class UserChange:
    """One identify (or group) call: who, what to patch, and the key of its system signal."""

    ids: Identifiers
    key: str
    signal_name: str = "$identify"
    occurred_at: datetime | None = None
    properties: dict | None = None
    timezone: str | None = None
    locale: str | None = None
    reengagement_opt_out: bool | None = None
    tenants: tuple[TenantLink, ...] = ()
    # For `$group`: a patch of the (single) tenant's traits.
    tenant_traits: dict | None = None
    # What a Segment identify/group line sent under its messageId (idempotency.py).
    request_hash: str | None = None
    changed: list[str] = field(default_factory=list)


def apply_user_changes(changes: Sequence[UserChange], *, now: datetime) -> set[str]:
    """Apply `changes` in order; return the keys whose system signal was written.

    Must run inside a transaction. Raises `IdentityConflict` when one of the
    identities cannot be resolved (the caller isolates the culprit).
    """
    if not changes:
        return set()
    newest_before = EndUser.objects.aggregate(top=Max("pk"))["top"] or 0
    resolved = resolve_users([c.ids for c in changes], now=now)
    users = _live_users({resolved[c.ids].pk for c in changes})
    owner = {id(c): users[resolved[c.ids].pk] for c in changes}
    created = {user.pk for user in users.values() if user.pk > newest_before}
    first_change: dict[int, int] = {}
    for change in changes:
        change.changed = []
        first_change.setdefault(owner[id(change)].pk, id(change))

    _patch_users(changes, owner, created, now)
    tenants = _patch_tenants(changes, now)
    _join_tenants(changes, owner, tenants, now)

    primary = dict(
        EndUser.objects.filter(pk__in=[u.pk for u in users.values()]).values_list(
            "pk", "primary_tenant_id"
        )
    )
    rows = []
    for change in changes:
        user = owner[id(change)]
        if change.signal_name == "$group":
            link = change.tenants[0]
            tenant_id = tenants[link.key].pk
            properties = {"tenant": link.key, "traits": change.tenant_traits or {}}
        else:
            tenant_id = primary.get(user.pk)
            properties = {
                "created": user.pk in created and first_change[user.pk] == id(change),
                "changed": change.changed,
                "merged_user_ids": [],
                "properties": change.properties or {},
            }
        rows.append(_system_row(user.pk, tenant_id, change, properties, now))
    written = write_signal_rows(rows, returning=("idempotency_key",))
    return {row["idempotency_key"] for row in written}


def _live_users(pks: set[int]) -> dict[int, EndUser]:
    """pk → the live user it is now (following merges made while resolving the chunk).

    One instance per live user, so patches of two rows naming the same user add up.
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


def _patch_users(changes, owner, created: set[int], now: datetime) -> None:
    dirty: dict[int, EndUser] = {}
    fields: set[str] = set()
    for change in changes:
        user = owner[id(change)]
        if change.properties:
            merged = apply_properties_patch(user.properties, change.properties)
            if merged != user.properties:
                user.properties = merged
                change.changed.append("properties")
        for name in ("timezone", "locale", "reengagement_opt_out"):
            value = getattr(change, name)
            if value is not None and getattr(user, name) != value:
                setattr(user, name, value)
                change.changed.append(name)
        # A user created by this import existed at least since its oldest record.
        if user.pk in created and change.occurred_at and change.occurred_at < user.first_seen_at:
            user.first_seen_at = change.occurred_at
            dirty[user.pk] = user
            fields.add("first_seen_at")
        if change.changed:
            dirty[user.pk] = user
            fields.update(change.changed)
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


def _join_tenants(changes, owner, tenants: dict[str, Tenant], now: datetime) -> None:
    """`tenancy.join_tenant` for every link: the earliest join date and the last role win."""
    wanted: dict[tuple[int, int], list] = {}
    for change in changes:
        user = owner[id(change)]
        for link in change.tenants:
            pair = (user.pk, tenants[link.key].pk)
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


def _system_row(user_id, tenant_id, change: UserChange, properties: dict, now: datetime) -> dict:
    return {
        "user_id": user_id,
        "tenant_id": tenant_id,
        "name": change.signal_name,
        "feature": None,
        "item": None,
        "interaction": None,
        "properties": properties,
        "context": {},
        "occurred_at": change.occurred_at or now,
        "received_at": now,
        "idempotency_key": change.key,
        "request_hash": change.request_hash,
        "source": Signal.Source.SYSTEM,
        # History informs, it does not act (DESIGN.md §1).
        "realtime": False,
        "failed_at": None,
        "error": "",
    }
