"""The core's entries in PULSE_USER_MERGE_HANDLERS: move per-user rows to the survivor.

Each handler is called as `handler(survivor, losers, now)` inside the merge
transaction, and must be set-based (a fixed number of queries); the contract is
extension_points.MergeHandler.
"""

from django.db.models import Min

from .models import Membership, Signal


def move_memberships(survivor, losers, now) -> None:
    """Memberships move; on a shared tenant the earliest join date and a non-empty role win."""
    loser_ids = [u.pk for u in losers]
    kept = {m.tenant_id: m for m in Membership.objects.filter(user=survivor)}
    shared = (
        Membership.objects.filter(user_id__in=loser_ids, tenant_id__in=list(kept))
        .values("tenant_id")
        .annotate(first=Min("joined_at"))
    )
    roles = dict(
        Membership.objects.filter(user_id__in=loser_ids, tenant_id__in=list(kept))
        .exclude(role="")
        .values_list("tenant_id", "role")
    )
    changed = []
    for row in shared:
        mine = kept[row["tenant_id"]]
        if row["first"] < mine.joined_at:
            mine.joined_at = row["first"]
        if not mine.role and roles.get(row["tenant_id"]):
            mine.role = roles[row["tenant_id"]]
        changed.append(mine)
    if changed:
        Membership.objects.bulk_update(changed, ["joined_at", "role"])
    Membership.objects.filter(user_id__in=loser_ids, tenant_id__in=list(kept)).delete()
    Membership.objects.filter(user_id__in=loser_ids).update(user=survivor)


def move_signals(survivor, losers, now) -> None:
    Signal.objects.filter(user_id__in=[u.pk for u in losers]).update(user=survivor)
