"""Identify, group and alias one user: the calls of the native and Segment APIs and the admin.

`identify` and `group` are a batch of one of `user_changes.apply_user_changes`,
the set-based implementation imports use too, so a call and an imported line
follow the same rules and write the same `$identify` / `$group` signal.
`alias` merges per call. Each appends its system signal, carrying the
`actor` that made the change, in the same transaction.
"""

from datetime import datetime

from django.db import transaction

from .identity import Identifiers, IdentityConflict, Resolution, merge_users, resolve_user
from .ingest import KeyAlreadyStored, record_system_signal
from .models import EndUser, Tenant
from .user_changes import GROUP, TenantLink, UserChange, apply_user_changes

__all__ = ["TenantLink", "alias", "group", "identify"]


def identify(
    ids: Identifiers,
    *,
    now: datetime,
    actor: str,
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
    IntegrityError (`KeyAlreadyStored`) and rolls back whole."""
    change = UserChange(
        ids, key=idempotency_key, request_hash=request_hash, properties=properties,
        timezone=timezone, locale=locale, reengagement_opt_out=reengagement_opt_out,
        tenants=tuple(tenants),
    )
    _apply_one(change, now=now, actor=actor, realtime=realtime)
    change.user.refresh_from_db()
    return Resolution(change.user, change.created, change.merged_ids, change.changed)


def group(
    ids: Identifiers,
    tenant_key: str,
    *,
    now: datetime,
    actor: str,
    name: str | None = None,
    traits: dict | None = None,
    realtime: bool = True,
    role: str | None = None,
    joined_at: datetime | None = None,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
) -> tuple[EndUser, Tenant]:
    """Put the user in the tenant (created on first use), patching the tenant's traits."""
    link = TenantLink(tenant_key, name=name, joined_at=joined_at, role=role)
    change = UserChange(
        ids, key=idempotency_key, request_hash=request_hash, signal_name=GROUP, tenants=(link,),
        tenant_traits=traits,
    )
    _apply_one(change, now=now, actor=actor, realtime=realtime)
    return change.user, Tenant.objects.get(key=tenant_key)


def _apply_one(change: UserChange, *, now: datetime, actor: str, realtime: bool = True) -> None:
    with transaction.atomic():
        apply_user_changes([change], now=now, actor=actor, realtime=realtime)
        if not change.written:
            raise KeyAlreadyStored(change.key)


def alias(
    previous_id: str,
    user_id: str,
    *,
    now: datetime,
    actor: str,
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
            target, "$alias", now=now, actor=actor,
            properties={"previous_id": previous_id, "merged_user_ids": merged},
            idempotency_key=idempotency_key, request_hash=request_hash, occurred_at=occurred_at,
            realtime=realtime,
        )
        return target
