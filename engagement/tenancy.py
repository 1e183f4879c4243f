"""Tenants created on first use, and memberships of users in them."""

from collections.abc import Iterable
from datetime import datetime

from .bulk import insert_returning
from .identity import refresh_primary_tenants
from .models import Membership, Tenant


def ensure_tenants(keys: Iterable[str], *, now: datetime) -> dict[str, Tenant]:
    """key → Tenant for every key, creating the missing ones (two queries)."""
    keys = sorted(set(keys))
    if not keys:
        return {}
    insert_returning(
        Tenant,
        [{"key": k, "name": "", "traits": {}, "created_at": now} for k in keys],
        conflict_fields=["key"],
    )
    return {t.key: t for t in Tenant.objects.filter(key__in=keys)}


def ensure_memberships(pairs: Iterable[tuple[int, int, datetime]]) -> int:
    """Add (user_id, tenant_id, joined_at) memberships that do not exist yet.

    Returns how many were added; primary tenants of those users are refreshed.
    """
    first: dict[tuple[int, int], datetime] = {}
    for user_id, tenant_id, joined_at in pairs:
        key = (user_id, tenant_id)
        if key not in first or joined_at < first[key]:
            first[key] = joined_at
    if not first:
        return 0
    rows = [
        {"user_id": u, "tenant_id": t, "role": "", "joined_at": joined}
        for (u, t), joined in sorted(first.items())
    ]
    added = insert_returning(
        Membership, rows, conflict_fields=["user", "tenant"], returning=("user",)
    )
    if added:
        refresh_primary_tenants({row["user_id"] for row in added})
    return len(added)
