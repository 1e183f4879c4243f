"""PULSE_USER_MERGE_HANDLERS entry: the survivor takes the losers' bucket stays.

Per bucket, the person's stays (survivor's and losers') become the survivor's,
numbered again by entry time (1, 2, …) so the entry count stays "1 + earlier
stays", with their transitions renumbered alike. When more than one of them
is active, the earliest entry stays active and the others end with reason
`merged`, without a transition: the person never left. Later evaluation of the
survivor (the merge's `$identify`) joins or leaves from there.

Set-based: two reads and five writes whatever the number of losers and stays.
The renumbering first moves every affected count out of the way (+OFFSET), so
no intermediate row collides with the unique (bucket, user, entry count) keys.
"""

from django.db.models import F

from .models import BucketMembership, BucketTransition, LeaveReason

OFFSET = 1_000_000


def merge_memberships(survivor, losers, now) -> None:
    loser_ids = [u.pk for u in losers]
    buckets = set(BucketMembership.objects.filter(user_id__in=loser_ids).values_list("bucket_id", flat=True))
    if not buckets:
        return
    rows = list(BucketMembership.objects.filter(user_id__in=[survivor.pk, *loser_ids], bucket_id__in=buckets)
                .order_by("bucket_id", "entered_at", "pk"))
    numbers, closing = _plan(rows)
    ids = [row.pk for row in rows]
    BucketMembership.objects.filter(pk__in=ids).update(entry_count=F("entry_count") + OFFSET)
    BucketTransition.objects.filter(membership_id__in=ids).update(entry_count=F("entry_count") + OFFSET)
    BucketMembership.objects.filter(pk__in=closing).update(status="left", left_at=now,
                                                          leave_reason=LeaveReason.MERGED)
    for row in rows:
        row.user_id, row.entry_count = survivor.pk, numbers[row.pk]
    BucketMembership.objects.bulk_update(rows, ["user", "entry_count"], batch_size=500)
    transitions = list(BucketTransition.objects.filter(membership_id__in=ids).only("pk", "membership_id"))
    for transition in transitions:
        transition.user_id, transition.entry_count = survivor.pk, numbers[transition.membership_id]
    BucketTransition.objects.bulk_update(transitions, ["user", "entry_count"], batch_size=500)


def _plan(rows) -> tuple[dict[int, int], list[int]]:
    """The new entry count of each stay, and the active stays that close (all but the earliest)."""
    numbers, closing, counted, kept = {}, [], {}, set()
    for row in rows:
        counted[row.bucket_id] = counted.get(row.bucket_id, 0) + 1
        numbers[row.pk] = counted[row.bucket_id]
        if row.status == BucketMembership.Status.ACTIVE:
            if row.bucket_id in kept:
                closing.append(row.pk)
            kept.add(row.bucket_id)
    return numbers, closing
