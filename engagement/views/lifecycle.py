"""`POST /api/v1/users/<user_ref>/lifecycle`: the user's answer to the goodbye."""

from django.utils import timezone

from .. import validation as v
from ..api import ApiError, api_view, json_response, parse_json_object, user_for_ref
from ..loops.lifecycle import RESPONSES, InvalidTransition, lifecycle_of, respond

BODY = {"response": v.Field(v.string(20), required=True)}


@api_view({"POST": "send"}, user_token=("POST",))
def lifecycle_response(request, user_ref):
    user = user_for_ref(request, user_ref)
    try:
        data = v.validate(parse_json_object(request), BODY)
    except v.Invalid as exc:
        raise ApiError(400, "invalid_request", "the body has invalid fields", exc.errors) from None
    if data["response"] not in RESPONSES:
        raise ApiError(400, "invalid_request", "unknown response", [
            {"field": "response", "message": f"must be one of {', '.join(RESPONSES)}"}
        ])
    try:
        respond(user, data["response"], now=timezone.now(), actor=request.actor)
    except InvalidTransition:
        raise ApiError(409, "invalid_transition",
                       "this response is not valid for the user's lifecycle state now") from None
    return json_response({"lifecycle": lifecycle_of(user)})
