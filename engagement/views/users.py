"""`/api/v1/users`: identify, read and erase users, and mint user tokens."""

from datetime import timedelta

from django.utils import timezone

from .. import schemas, user_tokens
from .. import validation as v
from ..api import (
    ApiError,
    allows,
    api_view,
    json_response,
    optional_json_object,
    parse_json_object,
    user_for_ref,
)
from ..erase import erase_user
from ..identity import as_public
from ..native import parse_identify
from ..people import identify
from ..refs import canonical_ref, ref_for
from ..user_sections import render_sections

TOKEN = schemas.spec(schemas.TOKEN_REQUEST)


@api_view({"POST": "ingest"})
def users_collection(request):
    """Identify. An `ingest`-only key may ship inside client apps, so it learns nothing it did
    not send, not even whether the user existed: it always gets 200 and a ref made of the
    request's own strongest identifier (the canonical ref could reveal an external id it never
    knew), and its email never links other ids to an existing user
    (`identity.as_public`)."""
    try:
        change = parse_identify(parse_json_object(request))
    except v.Invalid as exc:
        raise ApiError(400, "invalid_request", "the body has invalid fields", exc.errors) from None
    reads = allows(request, "read")
    ids = change.ids if reads else as_public([change.ids])[0]
    resolution = identify(
        ids,
        now=timezone.now(),
        actor=request.actor,
        properties=change.properties,
        timezone=change.timezone,
        locale=change.locale,
        tenants=change.tenants,
        reengagement_opt_out=change.reengagement_opt_out,
    )
    if not reads:
        return json_response({"id": own_ref(change.ids)})
    body = serialize_user(resolution.user)
    body["created"] = resolution.created
    body["merged_user_ids"] = resolution.merged_ids
    return json_response(body, status=201 if resolution.created else 200)


@api_view({"GET": "read", "DELETE": "admin"})
def user_detail(request, user_ref):
    user = user_for_ref(request, user_ref)
    if request.method == "DELETE":
        ref = canonical_ref(user)
        erasure = erase_user(user, erased_by=request.actor, now=timezone.now())
        return json_response({"erased": True, "user": ref, "internal_id": user.pk, "counts": erasure.counts})
    body = serialize_user(user)
    values, body["sections_failed"] = render_sections(user, taken=RESERVED_KEYS)
    body.update(values)
    return json_response(body)


@api_view({"POST": "send"})
def user_token(request, user_ref):
    """Mint a short-lived token a client app sends to act for this one user."""
    user = user_for_ref(request, user_ref)
    data = _validated(optional_json_object(request), TOKEN)
    ttl = timedelta(seconds=data["ttl_seconds"]) if "ttl_seconds" in data else None
    token, expires_at = user_tokens.mint(user, now=timezone.now(), ttl=ttl)
    # No ref in the answer: a `send` key that named the user by email must not learn its id.
    return json_response({"token": token, "expires_at": expires_at.isoformat()}, status=201)




def _validated(data, spec):
    try:
        return v.validate(data, spec)
    except v.Invalid as exc:
        raise ApiError(400, "invalid_request", "the body has invalid fields", exc.errors) from None


# The answer's own keys; a PULSE_USER_SECTIONS key may be none of these (engagement/checks.py).
USER_FIELDS = (
    "id", "internal_id", "external_id", "anonymous_id", "email", "properties", "timezone", "locale",
    "reengagement_opt_out", "first_seen_at", "last_seen_at", "primary_tenant",
)
RESERVED_KEYS = (*USER_FIELDS, "sections_failed", "created", "merged_user_ids")


def own_ref(ids) -> str:
    """A ref naming the identified user made only of what the request itself sent."""
    kind, value = ids.pairs()[0]
    return ref_for(kind, value)


def serialize_user(user) -> dict:
    return {
        "id": canonical_ref(user),
        "internal_id": user.pk,
        "external_id": user.external_id,
        "anonymous_id": user.anonymous_id,
        "email": user.email,
        "properties": user.properties,
        "timezone": user.timezone or None,
        "locale": user.locale or None,
        "reengagement_opt_out": user.reengagement_opt_out,
        "first_seen_at": user.first_seen_at.isoformat(),
        "last_seen_at": user.last_seen_at.isoformat() if user.last_seen_at else None,
        "primary_tenant": user.primary_tenant.key if user.primary_tenant_id else None,
    }
