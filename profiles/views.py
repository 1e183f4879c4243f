"""`/api/v1/users/<user_ref>/profile`: read a profile (or peek at it) and rebuild it."""

from django.utils import timezone

from engagement.api import ApiError, api_view, json_response, parse_json_object, user_for_ref

from .reads import get_profile, peek_profile, profile_json, rebuild_profile

QUERY_PARAMS = {"peek"}
BOOLEANS = {"true": True, "false": False}


def _peek(query) -> bool:
    unknown = sorted(set(query) - QUERY_PARAMS)
    if unknown:
        raise ApiError(400, "invalid_request", "unknown query parameters: see details",
                       details=[{"field": name, "message": "unknown parameter"} for name in unknown])
    values = query.getlist("peek")
    if not values:
        return False
    if len(values) > 1 or values[0] not in BOOLEANS:
        raise ApiError(400, "invalid_request", "peek must be true or false",
                       details=[{"field": "peek", "message": "must be true or false"}])
    return BOOLEANS[values[0]]


@api_view({"GET": "read"}, user_token=("GET",))
def user_profile(request, user_ref):
    peek = _peek(request.GET)
    user = user_for_ref(request, user_ref)
    now = timezone.now()
    readings = peek_profile(user, now) if peek else get_profile(user, now)
    return json_response(profile_json(readings))


@api_view({"POST": "admin"})
def rebuild_user_profile(request, user_ref):
    if request.GET:
        raise ApiError(400, "invalid_request", "this route takes no query parameters")
    if request.body:
        data = parse_json_object(request)
        if data:
            raise ApiError(400, "invalid_request", "the body must be empty or {}",
                           details=[{"field": key, "message": "unknown field"} for key in sorted(data)])
    user = user_for_ref(request, user_ref)
    return json_response(profile_json(rebuild_profile(user, timezone.now())))
