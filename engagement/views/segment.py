"""`/v1/track`, `/v1/identify`, … `/v1/batch`: the Segment-compatible API (rules in `segment.py`).

A write key in the Basic auth header is checked before the body is read; a
key given only as the body's `writeKey` is checked once the body is parsed.
"""

from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from .. import segment
from ..api import ApiError, authorize

SCOPE = "ingest"
CHALLENGE = 'Basic realm="pulse"'  # Segment SDKs send the write key as the Basic username


def _endpoint(kind: str):
    @csrf_exempt
    def view(request):
        received_at = timezone.now()
        try:
            if request.method != "POST":
                raise ApiError(405, "method_not_allowed", "use POST on this path")
            header_key = segment.basic_auth_key(request)
            if header_key:
                authorize(request, SCOPE, header_key, challenge=CHALLENGE)
            payload = segment.read_payload(request)
            if not header_key:
                authorize(request, SCOPE, segment.body_write_key(payload), challenge=CHALLENGE)
            return JsonResponse(segment.receive(
                kind, payload, now=received_at, actor=request.actor,
                public=not request.principal.allows("read"),
            ))
        except ApiError as exc:
            return _error(exc)

    view.__name__ = view.__qualname__ = f"segment_{kind}"
    view.pulse_scopes = {"POST": SCOPE}
    view.pulse_methods = ("POST",)
    view.pulse_user_token = ()
    return view


def _error(exc: ApiError) -> JsonResponse:
    body = {"success": False, "code": exc.code, "message": exc.message}
    if exc.details:
        body["dropped"] = exc.details
    response = JsonResponse(body, status=exc.status)
    for name, value in exc.headers.items():
        response[name] = value
    if exc.status == 405:
        response["Allow"] = "POST"
    return response


track = _endpoint("track")
identify = _endpoint("identify")
group = _endpoint("group")
page = _endpoint("page")
screen = _endpoint("screen")
alias = _endpoint("alias")
batch = _endpoint(segment.BATCH)
