"""`/api/v1/users`: identify, read and erase users."""

from django.utils import timezone

from .. import validation as v
from ..api import ApiError, api_view, json_response, parse_json_object
from ..erase import erase_user
from ..identity import Identifiers, find_user
from ..people import TenantLink, identify
from ..refs import parse_user_ref
from ..registry import entries

TENANT_LINK = {
    "key": v.Field(v.string(200), required=True),
    "name": v.Field(v.string(300), nullable=True),
    "joined_at": v.Field(v.timestamp, nullable=True),
    "role": v.Field(v.string(100, min_length=0), nullable=True),
}
IDENTIFY = {
    "id": v.Field(v.string(255)),
    "anonymous_id": v.Field(v.string(255)),
    "email": v.Field(v.email),
    "properties": v.Field(v.json_object()),
    "timezone": v.Field(v.time_zone),
    "locale": v.Field(v.string(35)),
    "reengagement_opt_out": v.Field(v.boolean),
    "tenants": v.Field(v.list_of(v.nested(TENANT_LINK), max_items=100)),
}


@api_view(scope="ingest", methods=("POST",))
def users_collection(request):
    data = _validated(parse_json_object(request), IDENTIFY)
    ids = Identifiers(data.get("id"), data.get("anonymous_id"), data.get("email"))
    if not ids:
        raise ApiError(400, "invalid_request", "give at least one of id, anonymous_id, email",
                       [{"field": "id", "message": "at least one identifier is required"}])
    resolution = identify(
        ids,
        now=timezone.now(),
        properties=data.get("properties"),
        timezone=data.get("timezone"),
        locale=data.get("locale"),
        tenants=tuple(TenantLink(**link) for link in data.get("tenants", [])),
        reengagement_opt_out=data.get("reengagement_opt_out"),
    )
    status = 201 if resolution.created else 200
    body = serialize_user(resolution.user)
    body["merged_user_ids"] = resolution.merged_ids
    return json_response(body, status=status)


@api_view(scope="read", methods=("GET", "DELETE"))
def user_detail(request, user_ref):
    user = _user_or_404(user_ref)
    if request.method == "DELETE":
        if not request.api_key.allows("admin"):
            raise ApiError(403, "forbidden", "erasing a user needs the 'admin' scope")
        erasure = erase_user(user, erased_by=f"api_key:{request.api_key.name}", now=timezone.now())
        return json_response({"erased": True, "user_id": user.pk, "counts": erasure.counts})
    body = serialize_user(user)
    for section in entries("PULSE_USER_SECTIONS"):
        key, value = section(user)
        body[key] = value
    return json_response(body)


def _user_or_404(user_ref):
    try:
        ids = parse_user_ref(user_ref)
    except ValueError as exc:
        raise ApiError(400, "invalid_user_ref", str(exc)) from None
    user = find_user(ids)
    if user is None:
        raise ApiError(404, "not_found", "no such user")
    return user


def _validated(data, spec):
    try:
        return v.validate(data, spec)
    except v.Invalid as exc:
        raise ApiError(400, "invalid_request", "the body has invalid fields", exc.errors) from None


def serialize_user(user) -> dict:
    return {
        "id": user.pk,
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
