"""Identify, group and alias: the user-changing calls shared by the native and Segment APIs.

Each one resolves identity through `identity.resolve_user` and appends its
system signal (`$identify`, `$group`, `$alias`) in the same transaction;
`realtime=False` marks that signal as history (seeding, backfills), which
updates derived state but never acts.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction

from .identity import (
    Identifiers,
    IdentityConflict,
    Resolution,
    apply_properties_patch,
    merge_users,
    resolve_user,
)
from .ingest import record_system_signal
from .models import EndUser, Tenant
from .tenancy import ensure_tenants, join_tenant


@dataclass(frozen=True)
class TenantLink:
    key: str
    name: str | None = None
    joined_at: datetime | None = None
    role: str | None = None


def identify(
    ids: Identifiers,
    *,
    now: datetime,
    properties: dict | None = None,
    timezone: str | None = None,
    locale: str | None = None,
    tenants: tuple[TenantLink, ...] = (),
    realtime: bool = True,
    reengagement_opt_out: bool | None = None,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
) -> Resolution:
    """Resolve and update the user; `idempotency_key` (with the `request_hash` of what was
    sent) goes on the `$identify` signal, so replaying a call with the same key raises
    IntegrityError and rolls back whole."""
    with transaction.atomic():
        resolution = resolve_user(
            ids, now=now, properties=properties, timezone=timezone, locale=locale
        )
        user = resolution.user
        if reengagement_opt_out is not None and user.reengagement_opt_out != reengagement_opt_out:
            user.reengagement_opt_out = reengagement_opt_out
            user.save(update_fields=["reengagement_opt_out"])
            resolution.changed_fields.append("reengagement_opt_out")
        for link in tenants:
            tenant = _tenant(link.key, link.name, None, now)
            join_tenant(user, tenant, joined_at=link.joined_at or now, role=link.role)
        user.refresh_from_db()
        record_system_signal(
            user,
            "$identify",
            now=now, realtime=realtime,
            properties={
                "created": resolution.created,
                "changed": resolution.changed_fields,
                "merged_user_ids": resolution.merged_ids,
                "properties": properties or {},
            },
            idempotency_key=idempotency_key,
            request_hash=request_hash,
        )
        return resolution


def group(
    ids: Identifiers,
    tenant_key: str,
    *,
    now: datetime,
    name: str | None = None,
    traits: dict | None = None,
    realtime: bool = True,
    role: str | None = None,
    joined_at: datetime | None = None,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
) -> tuple[EndUser, Tenant]:
    """Put the user in the tenant (created on first use), patching the tenant's traits."""
    with transaction.atomic():
        user = resolve_user(ids, now=now).user
        tenant = _tenant(tenant_key, name, traits, now)
        join_tenant(user, tenant, joined_at=joined_at or now, role=role)
        record_system_signal(
            user, "$group", now=now, tenant_id=tenant.pk, realtime=realtime,
            properties={"tenant": tenant.key, "traits": traits or {}},
            idempotency_key=idempotency_key, request_hash=request_hash,
        )
        return user, tenant


def alias(
    previous_id: str,
    user_id: str,
    *,
    now: datetime,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
    occurred_at: datetime | None = None,
    realtime: bool = True,
) -> EndUser:
    """Merge whoever `previous_id` named (an anonymous or an earlier user id) into `user_id`."""
    with transaction.atomic():
        target = resolve_user(Identifiers(external_id=user_id), now=now).user
        previous = list(
            EndUser.objects.filter(deleted_at__isnull=True)
            .exclude(pk=target.pk)
            .filter(anonymous_id=previous_id)
        ) + list(
            EndUser.objects.filter(deleted_at__isnull=True, external_id=previous_id).exclude(
                pk=target.pk
            )
        )
        if any(u.external_id and u.external_id != user_id for u in previous):
            raise IdentityConflict("the previous id already names a user with another external id")
        merged = [u.pk for u in previous]
        if previous:
            target = merge_users([target, *previous], now=now)
        elif not target.anonymous_id:
            target.anonymous_id = previous_id
            target.save(update_fields=["anonymous_id"])
        record_system_signal(
            target, "$alias", now=now,
            properties={"previous_id": previous_id, "merged_user_ids": merged},
            idempotency_key=idempotency_key, request_hash=request_hash, occurred_at=occurred_at,
            realtime=realtime,
        )
        return target


def _tenant(key: str, name: str | None, traits: dict | None, now: datetime) -> Tenant:
    tenant = ensure_tenants([key], now=now)[key]
    changed = []
    if name and tenant.name != name:
        tenant.name = name
        changed.append("name")
    if traits:
        merged = apply_properties_patch(tenant.traits, traits)
        if merged != tenant.traits:
            tenant.traits = merged
            changed.append("traits")
    if changed:
        tenant.save(update_fields=changed)
    return tenant
