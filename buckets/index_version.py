"""The version of what real time evaluates, which workers compare with their cached index.

One row, moved by every change to a bucket's definition in that change's
transaction, so a worker can never see a committed change and still trust its
old index. A worker reads it once per drain batch: one primary-key read. A
database row rather than a Redis key: it commits with the change (no window
where the change is visible and the key is not), and it is there when Redis
is down.
"""

import secrets

from .models import IndexVersion

ROW = 1


def current_version() -> int:
    found = IndexVersion.objects.filter(pk=ROW).values_list("version", flat=True).first()
    return found if found is not None else 0


def bump_version() -> None:
    """In the caller's transaction; the row is created on first use.

    A fresh random value rather than a counter: a counter goes back to an old
    value when a bump is rolled back or the row is recreated, and a worker
    holding an index built at that value would trust it."""
    value = secrets.randbits(62) + 1
    if not IndexVersion.objects.filter(pk=ROW).update(version=value):
        IndexVersion.objects.update_or_create(pk=ROW, defaults={"version": value})
