"""Signals get `request_hash`; stored native idempotency keys move into the `api:` namespace.

Native keys used to be stored raw, so a native `seg:x` pre-empted Segment
message `x`. After this migration a native key `k` is stored as `api:k`
(`api:sha256:<hex>` when that would pass 255 characters), exactly as
`idempotency.namespaced` stores new ones, so a client retrying an old
request is still recognised.

Which stored keys were native: every key of a `source=api` signal, and the
keys of `source=import` signals except those the import derived or took from
a Segment line (`seg:`, `import:`) and the demo's (`demo:`). Segment and
system signals keep their keys. Old rows get no hash: a retry of them is a
duplicate whatever it holds.

Each key length is converted by its own UPDATE, longest first: the new key of
every row is 4 characters longer than the old, so it can never meet a key not
yet converted (`foo` → `api:foo` while a raw `api:foo` waits to become
`api:api:foo` would break the unique constraint mid-statement). The functions
are frozen here rather than imported, as a migration must not change when the
code does.
"""

import hashlib

from django.db import migrations, models
from django.db.models import F, Q, Value
from django.db.models.functions import Concat, Length, Substr

PREFIX = "api:"
MAX_KEY_LENGTH = 255
NOT_NATIVE_IN_IMPORTS = ("seg:", "import:", "demo:")


def long_native_key(key: str) -> str:
    return PREFIX + "sha256:" + hashlib.sha256(key.encode("utf-8")).hexdigest()


def _native(Signal):
    imported = Q(source="import")
    for prefix in NOT_NATIVE_IN_IMPORTS:
        imported &= ~Q(idempotency_key__startswith=prefix)
    return Signal.objects.filter(Q(source="api") | imported, idempotency_key__isnull=False).annotate(
        key_length=Length("idempotency_key")
    )


def namespace_native_keys(Signal) -> int:
    """Prefix every stored native key with `api:`; returns how many keys changed."""
    native = _native(Signal)
    longest_plain = MAX_KEY_LENGTH - len(PREFIX)
    long_rows = list(native.filter(key_length__gt=longest_plain).values_list("pk", "idempotency_key"))
    lengths = sorted(
        set(native.filter(key_length__lte=longest_plain).values_list("key_length", flat=True)),
        reverse=True,
    )
    changed = 0
    for length in lengths:
        pks = _native(Signal).filter(key_length=length).values("pk")
        changed += Signal.objects.filter(pk__in=pks).update(
            idempotency_key=Concat(Value(PREFIX), F("idempotency_key"))
        )
    for pk, key in long_rows:
        changed += Signal.objects.filter(pk=pk).update(idempotency_key=long_native_key(key))
    return changed


def strip_native_keys(Signal) -> int:
    """The reverse: `api:k` back to `k`, shortest first (digests of long keys stay as they are)."""
    rows = Signal.objects.filter(
        source__in=("api", "import"), idempotency_key__startswith=PREFIX
    ).exclude(idempotency_key__startswith=PREFIX + "sha256:").annotate(key_length=Length("idempotency_key"))
    changed = 0
    for length in sorted(set(rows.values_list("key_length", flat=True))):
        pks = rows.filter(key_length=length).values("pk")
        changed += Signal.objects.filter(pk__in=pks).update(
            idempotency_key=Substr("idempotency_key", len(PREFIX) + 1)
        )
    return changed


def forwards(apps, schema_editor):
    namespace_native_keys(apps.get_model("engagement", "Signal"))


def backwards(apps, schema_editor):
    strip_native_keys(apps.get_model("engagement", "Signal"))


class Migration(migrations.Migration):

    dependencies = [
        ("engagement", "0007_signal_queue"),
    ]

    operations = [
        migrations.AddField(
            model_name="signal",
            name="request_hash",
            field=models.CharField(blank=True, max_length=32, null=True),
        ),
        migrations.RunPython(forwards, backwards),
    ]
