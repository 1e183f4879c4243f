"""Staff edits of a tenant, recorded as `$group` signals of its members.

Everything that changes a user is a signal, and a tenant's name and traits are
part of what its members are (segments and criteria read them); the drain
re-evaluates users by their signals. So a tenant edit appends one `$group`
signal per live member, carrying the traits patch and the actor, with the
tenant as its tenant. There is no signal without a user (`Signal.user` is
required), and one signal on an arbitrary member would leave the others
unseen. The members are read in keyset chunks and each chunk is one
`record_system_signals` statement, so a tenant of 100,000 members costs
about 20 reads and 20 inserts on PostgreSQL, never a query per member.
"""

from datetime import datetime

from django.db import transaction

from .identity import properties_patch_between
from .ingest import SystemSignal, record_system_signals
from .models import Membership, Tenant
from .user_changes import GROUP

MEMBER_CHUNK = 5000


def update_tenant(
    tenant: Tenant,
    *,
    actor: str,
    now: datetime,
    name: str | None = None,
    traits: dict | None = None,
) -> list[str]:
    """Set the tenant's `name` and/or replace its `traits`; return the fields that changed.

    Nothing changed, nothing recorded. Otherwise every live member gets a
    `$group` signal `{"tenant", "traits": <patch; null deletes a key>, "changed", "name"?}`.
    """
    with transaction.atomic():
        current = Tenant.objects.select_for_update().get(pk=tenant.pk)
        changed, patch = [], {}
        if name is not None and name != current.name:
            current.name = name
            changed.append("name")
        if traits is not None:
            patch = properties_patch_between(current.traits, traits)
            if patch:
                current.traits = dict(traits)
                changed.append("traits")
        if not changed:
            return []
        current.save(update_fields=changed)
        properties = {"tenant": current.key, "traits": patch, "changed": changed}
        if "name" in changed:
            properties["name"] = current.name
        for user_ids in member_chunks(current.pk):
            signals = [SystemSignal(uid, GROUP, actor, properties, tenant_id=current.pk) for uid in user_ids]
            record_system_signals(signals, now=now)
    tenant.name, tenant.traits = current.name, current.traits
    return changed


def member_chunks(tenant_id: int, size: int | None = None):
    """The tenant's live members' ids, `size` (MEMBER_CHUNK) at a time, in membership order (keyset)."""
    size = size or MEMBER_CHUNK
    after = 0
    while True:
        rows = list(
            Membership.objects.filter(tenant_id=tenant_id, pk__gt=after, user__deleted_at__isnull=True)
            .order_by("pk")
            .values_list("pk", "user_id")[:size]
        )
        if not rows:
            return
        yield [user_id for _, user_id in rows]
        after = rows[-1][0]
