"""PULSE_USER_SECTIONS: the parts of `GET /api/v1/users/<user_ref>` beyond the core fields.

Each entry declares its key (`@user_section("memberships")`) and is called as
`section(user) -> JSON-able value` (the contract: extension_points.UserSection).
Sections are isolated from each other: each runs in its own savepoint (when
there is a transaction to protect), and one that raises is left out of the
answer, its key listed in `sections_failed`, and logged as
`event=user_section_failed` with the section's key and the user's internal id
only. Colliding keys are refused at start-up by engagement/checks.py;
should one slip through anyway (settings changed at run time), it is treated as
a failed section rather than overwrite a core field.
"""

import logging
from collections.abc import Collection
from contextlib import nullcontext

from django.db import connection, transaction

from .extension_points import user_section
from .models import Membership, Signal
from .registry import entries

log = logging.getLogger("pulse.api")

RECENT_SIGNALS = 20


def render_sections(user, *, taken: Collection[str]) -> tuple[dict, list[str]]:
    """({key: value} of every section that worked, [keys of those that failed]), in settings order.

    `taken` are the keys already in the answer (the user's core fields)."""
    values: dict = {}
    failed: list[str] = []
    for section in entries("PULSE_USER_SECTIONS"):
        key = getattr(section, "key", None) or getattr(section, "__qualname__", "unnamed")
        if key in taken or key in values or not hasattr(section, "key"):
            log.error("event=user_section_failed section=%s user_id=%s error_type=KeyCollision",
                      key, user.pk)
            failed.append(key)
            continue
        try:
            with _savepoint():
                values[key] = section(user)
        except Exception as exc:  # noqa: BLE001 - one broken section must not hide the others
            log.exception("event=user_section_failed section=%s user_id=%s error_type=%s",
                          key, user.pk, type(exc).__name__)
            failed.append(key)
    return values, failed


def _savepoint():
    """Inside a transaction, a failing query must not poison the sections after it; outside
    one (a plain GET runs in autocommit) there is nothing to protect and no BEGIN to pay."""
    return transaction.atomic() if connection.in_atomic_block else nullcontext()


@user_section("memberships")
def memberships(user):
    rows = Membership.objects.filter(user=user).select_related("tenant").order_by("joined_at", "pk")
    return [
        {
            "tenant": m.tenant.key,
            "tenant_name": m.tenant.name,
            "role": m.role,
            "joined_at": m.joined_at.isoformat(),
            "primary": m.tenant_id == user.primary_tenant_id,
        }
        for m in rows
    ]


@user_section("recent_signals")
def recent_signals(user):
    rows = (
        Signal.objects.filter(user=user)
        .with_state()
        .select_related("tenant")
        .order_by("-occurred_at", "-pk")[:RECENT_SIGNALS]
    )
    return [serialize_signal(s) for s in rows]


def serialize_signal(signal: Signal) -> dict:
    return {
        "id": signal.pk,
        "name": signal.name,
        "occurred_at": signal.occurred_at.isoformat(),
        "received_at": signal.received_at.isoformat(),
        "source": signal.source,
        "tenant": signal.tenant.key if signal.tenant_id else None,
        "feature": signal.feature,
        "item": signal.item,
        "interaction": signal.interaction,
        "properties": signal.properties,
        "state": signal.state,
    }
