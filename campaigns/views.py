"""JSON endpoints: templates as code, the message outbox, the inbox, reads and preferences.

Rules live in the modules they are named for; these views parse, call and answer."""

from functools import wraps

from django.db import transaction
from django.utils import timezone

from engagement import user_tokens
from engagement import validation as v
from engagement.api import (
    ApiError,
    api_view,
    error_response,
    json_response,
    optional_json_object,
    parse_json_object,
    user_for_ref,
)
from engagement.idempotency import CONFLICT_CODE
from engagement.identity import find_user
from engagement.pagination import paginate
from engagement.refs import InvalidRef, canonical_ref, parse_user_ref

from . import preferences as prefs
from .models import Channel, Message, MessageTemplate, Preference
from .outbox import UnknownTemplate, queue_messages
from .reads import mark_read
from .serialize import inbox_json, message_json
from .templates_as_code import InvalidTemplate, as_json, save_template

MESSAGE_BODY = {
    "user": v.Field(v.string(400), required=True),
    "template": v.Field(v.string(200), required=True),
    "context": v.Field(v.json_object()),
    "idempotency_key": v.Field(v.string(255)),
    "scheduled_for": v.Field(v.timestamp),
}


def _invalid(errors, message="the body has invalid fields"):
    return ApiError(400, "invalid_request", message, errors)


def _validated(data, spec):
    try:
        return v.validate(data, spec)
    except v.Invalid as exc:
        raise _invalid(exc.errors) from None


# --- templates ------------------------------------------------------------


@api_view({"GET": "read"})
def templates_collection(request):
    page = paginate(MessageTemplate.objects.select_related("current_version"), request.GET,
                    ordering=("key", "id"), salt="templates")
    return json_response({"templates": [as_json(t) for t in page.rows], "next_cursor": page.next_cursor})


@api_view({"GET": "read", "PUT": "admin"})
def template_detail(request, key):
    if request.method == "PUT":
        return _put_template(request, key)
    template = MessageTemplate.objects.select_related("current_version").filter(key=key).first()
    if template is None:
        raise ApiError(404, "not_found", "no such template")
    return json_response({"template": as_json(template)})


def _put_template(request, key):
    doc = parse_json_object(request)
    try:
        saved = save_template(key, doc, actor=request.actor, now=timezone.now())
    except InvalidTemplate as exc:
        raise _invalid(exc.errors, "the template is invalid") from None
    body = {"template": as_json(saved.template, saved.version), "created": saved.created,
            "changed": saved.changed}
    if saved.secret:
        body["signing_secret"] = saved.secret  # shown this once; stored encrypted
    return json_response(body, status=201 if saved.created else 200)


# --- messages -------------------------------------------------------------


def _messages():
    return Message.objects.select_related("user", "template", "template_version")


@api_view({"GET": "read", "POST": "send"})
def messages_collection(request):
    return _queue(request) if request.method == "POST" else _list(request)


def _queue(request):
    data = _validated(parse_json_object(request), MESSAGE_BODY)
    user = user_for_ref(request, data["user"])
    now = timezone.now()
    try:
        with transaction.atomic():
            result = queue_messages([{
                "user_id": user.pk, "template": data["template"], "context": data.get("context") or {},
                "idempotency_key": data.get("idempotency_key"), "source": Message.Source.API,
                "scheduled_for": data.get("scheduled_for"),
            }], now=now)[0]
    except UnknownTemplate:
        raise ApiError(400, "unknown_template", "no live template has this key",
                       [{"field": "template", "message": "no live template has this key"}]) from None
    if result.conflict:
        raise ApiError(409, CONFLICT_CODE, "the idempotency key was already used for a different message",
                       [{"field": "idempotency_key", "code": CONFLICT_CODE,
                         "message": "was already used for a different message"}])
    message = _messages().get(pk=result.message_id)
    return json_response({"message": message_json(message), "created": result.created}, status=202)


def _list(request):
    rows = _messages()
    query = request.GET
    if query.get("user"):
        try:
            user = find_user(parse_user_ref(query["user"]))
        except InvalidRef as exc:
            raise ApiError(400, "invalid_user_ref", str(exc)) from None
        rows = rows.filter(user=user) if user else rows.none()
    if query.get("template"):
        rows = rows.filter(template__key=query["template"])
    for name, choices in (("status", Message.Status), ("source", Message.Source)):
        if query.get(name):
            if query[name] not in choices.values:
                raise _invalid([{"field": name, "message": f"must be one of {', '.join(choices.values)}"}],
                               f"unknown {name}")
            rows = rows.filter(**{name: query[name]})
    page = paginate(rows, query, ordering=("-created_at", "-id"), salt="messages")
    return json_response({"messages": [message_json(m) for m in page.rows], "next_cursor": page.next_cursor})


def _message_or_404(message_id: str) -> Message:
    if not message_id.isdigit() or len(message_id) > 18:
        raise ApiError(404, "not_found", "no such message")
    message = _messages().filter(pk=int(message_id)).first()
    if message is None:
        raise ApiError(404, "not_found", "no such message")
    return message


@api_view({"GET": "read"})
def message_detail(request, message_id):
    return json_response({"message": message_json(_message_or_404(message_id))})


def owner_token_view(scopes: dict, token_methods: tuple):
    """`api_view` for a route named by message id that the message's owner's token may call.

    The plumbing accepts a token for the route's `user_ref`; here that ref is
    the message owner's, looked up from the id. A valid token naming a message
    of another user gets the same 404 as one naming a missing message, so a
    token cannot probe which message ids exist."""

    def decorate(view):
        inner = api_view(scopes, user_token=token_methods)(view)

        @wraps(inner)
        def outer(request, message_id):
            owner_id = _owner_id(message_id)
            token = _token_of(request)
            if token is not None and owner_id != token.user_id:
                return error_response(404, "not_found", "no such message")
            return inner(request, message_id=message_id, user_ref=_ref_of(owner_id or _token_user(token)))

        for name in ("pulse_scopes", "pulse_methods", "pulse_user_token"):
            setattr(outer, name, getattr(inner, name))
        return outer

    return decorate


def _owner_id(message_id: str) -> int | None:
    if not (message_id.isdigit() and len(message_id) <= 18):
        return None
    return Message.objects.filter(pk=int(message_id)).values_list("user_id", flat=True).first()


def _token_user(token) -> int | None:
    return token.user_id if token else None


def _ref_of(user_id: int | None) -> str | None:
    if user_id is None:
        return None
    from engagement.models import EndUser

    user = EndUser.objects.filter(pk=user_id).first()
    return canonical_ref(user) if user else None


def _token_of(request):
    from engagement.api import bearer_key

    raw = bearer_key(request)
    return user_tokens.verify(raw, now=timezone.now()) if user_tokens.looks_like_token(raw) else None


@owner_token_view({"POST": "send"}, ("POST",))
def message_read(request, message_id, user_ref):
    if optional_json_object(request):
        raise ApiError(400, "invalid_request", "a read receipt takes no fields",
                       [{"field": "(root)", "message": "send no body, or {}"}])
    message = _message_or_404(message_id)
    if message.status != Message.Status.SENT:
        raise ApiError(409, "not_delivered", "only a delivered message can be read")
    result = mark_read(message, actor=request.actor, now=timezone.now())
    return json_response({"first_read": result.first_read,
                          "read_at": result.read_at.isoformat() if result.read_at else None})


# --- a user's inbox and preferences --------------------------------------


@api_view({"GET": "read"}, user_token=("GET",))
def inbox(request, user_ref):
    user = user_for_ref(request, user_ref)
    unread_only = request.GET.get("unread", "")
    if unread_only not in ("", "true", "false"):
        raise _invalid([{"field": "unread", "message": "must be true or false"}], "invalid unread")
    rows = _messages().filter(user=user, channel=Channel.IN_APP, status=Message.Status.SENT)
    unread = rows.filter(read_at__isnull=True)
    page = paginate(unread if unread_only == "true" else rows, request.GET,
                    ordering=("-created_at", "-id"), salt="inbox")
    return json_response({"messages": [inbox_json(m) for m in page.rows], "unread": unread.count(),
                          "next_cursor": page.next_cursor})


@api_view({"GET": "read", "POST": "send"}, user_token=("GET", "POST"))
def preferences(request, user_ref):
    user = user_for_ref(request, user_ref)
    if request.method == "POST":
        try:
            pref = prefs.update_preferences(user, parse_json_object(request), actor=request.actor,
                                            now=timezone.now())
        except prefs.InvalidPreferences as exc:
            raise _invalid(exc.errors, "invalid preferences") from None
    else:
        pref = Preference.objects.filter(user=user).first()
    return json_response(prefs.as_json(pref))
