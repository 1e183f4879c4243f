"""The core's entries in PULSE_USER_SECTIONS: parts of `GET /api/v1/users/<user_ref>`.

Each entry is `(user) -> (key, JSON-able value)`; later apps add theirs.
"""

from .models import Membership, Signal

RECENT_SIGNALS = 20


def memberships(user):
    rows = Membership.objects.filter(user=user).select_related("tenant").order_by("joined_at", "pk")
    return "memberships", [
        {
            "tenant": m.tenant.key,
            "tenant_name": m.tenant.name,
            "role": m.role,
            "joined_at": m.joined_at.isoformat(),
            "primary": m.tenant_id == user.primary_tenant_id,
        }
        for m in rows
    ]


def recent_signals(user):
    rows = (
        Signal.objects.filter(user=user)
        .with_state()
        .select_related("tenant")
        .order_by("-occurred_at", "-pk")[:RECENT_SIGNALS]
    )
    return "recent_signals", [serialize_signal(s) for s in rows]


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
