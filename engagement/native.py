"""Bodies of the native API turned into domain inputs, for the views and the importer alike.

A native signal (`POST /api/v1/signals`, one item) becomes a `SignalInput`, an
identify body (`POST /api/v1/users`) a `UserChange`; both are validated by
the specs `schemas` derives. Raises `validation.Invalid` naming every bad
field by its path.
"""

from . import idempotency, schemas
from . import validation as v
from .identity import Identifiers
from .ingest import SignalInput
from .user_changes import TenantLink, UserChange

SIGNAL = schemas.spec(schemas.SIGNAL)
IDENTIFY = schemas.spec(schemas.IDENTIFY)


def parse_signal(raw) -> SignalInput:
    """Validate one native signal object.

    Also the parser of native-shaped import lines, so an imported line gets the
    same key namespace and the same hash as the live request it copies.
    """
    data = v.validate(raw, SIGNAL)
    user = data["user"]
    ids = Identifiers(user.get("id"), user.get("anonymous_id"), user.get("email"))
    if not ids:
        raise v.Invalid([{"field": "user", "message": "needs at least one of id, anonymous_id, email"}])
    key = data.get("idempotency_key")
    return SignalInput(
        ids=ids,
        name=data["name"],
        occurred_at=data.get("occurred_at"),
        properties=data.get("properties") or {},
        context=data.get("context") or {},
        tenant_key=data.get("tenant"),
        feature=data.get("feature"),
        item=data.get("item"),
        interaction=data.get("interaction"),
        idempotency_key=idempotency.namespaced(idempotency.API_PREFIX, key),
        request_hash=idempotency.native_request_hash(raw) if key else None,
    )


def parse_identify(raw) -> UserChange:
    """Validate one identify body; the change has no key (the importer gives it one)."""
    data = v.validate(raw, IDENTIFY)
    ids = Identifiers(data.get("id"), data.get("anonymous_id"), data.get("email"))
    if not ids:
        raise v.Invalid([{"field": "id", "message": "give at least one of id, anonymous_id, email"}])
    return UserChange(
        ids=ids,
        properties=data.get("properties"),
        timezone=data.get("timezone"),
        locale=data.get("locale"),
        reengagement_opt_out=data.get("reengagement_opt_out"),
        tenants=tuple(TenantLink(**link) for link in data.get("tenants", [])),
    )
