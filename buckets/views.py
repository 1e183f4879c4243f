"""`/api/v1/buckets`: define, list, read and disable buckets, and preview criteria."""

from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils import timezone

from engagement.api import ApiError, api_view, json_response, parse_json_object, user_for_ref
from engagement.pagination import paginate
from engagement.refs import canonical_ref

from . import stats
from .definitions import BucketInvalid, SlugTaken, bucket_json, create_bucket, disable_bucket, replace_bucket
from .manual import MembersInvalid, change_members
from .models import Bucket, BucketMembership
from .preview import PreviewInvalid, preview

PAST_STAYS = 100


def _invalid(errors: list[dict], what: str = "the bucket") -> ApiError:
    return ApiError(400, "invalid_request", f"{what} is invalid: see details", details=errors)


@api_view({"GET": "read", "POST": "admin"})
def buckets_collection(request):
    if request.method == "GET":
        page = paginate(Bucket.objects.all(), request.GET, ordering=("slug", "id"), salt="buckets")
        return json_response({"items": [bucket_json(b) for b in page.rows], "next_cursor": page.next_cursor})
    try:
        bucket = create_bucket(parse_json_object(request), actor=request.actor, now=timezone.now())
    except BucketInvalid as exc:
        raise _invalid(exc.errors) from None
    except SlugTaken:
        raise ApiError(409, "conflict", "a bucket with this slug exists",
                       details=[{"field": "slug", "message": "is taken"}]) from None
    return json_response(bucket_json(bucket), status=201)


def _bucket(slug) -> Bucket:
    try:
        return get_object_or_404(Bucket, slug=slug)
    except Http404:
        raise ApiError(404, "not_found", "no such bucket") from None


@api_view({"GET": "read", "PUT": "admin", "DELETE": "admin"})
def bucket_detail(request, slug):
    bucket = _bucket(slug)
    if request.method == "GET":
        body = bucket_json(bucket)
        body["size"] = stats.size(bucket.pk)
        body["last_14_days"] = stats.recent_counts(bucket.pk, now=timezone.now())
        return json_response(body)
    if request.method == "PUT":
        try:
            data = parse_json_object(request)
            bucket = replace_bucket(bucket, data, actor=request.actor, now=timezone.now())
        except BucketInvalid as exc:
            raise _invalid(exc.errors) from None
    elif request.method == "DELETE":
        bucket = disable_bucket(bucket, actor=request.actor, now=timezone.now())
    return json_response(bucket_json(bucket))


@api_view({"POST": "read"})
def bucket_preview(request):
    data = parse_json_object(request)
    unknown = [{"field": key, "message": "unknown field"} for key in data if key != "criteria"]
    if "criteria" not in data:
        raise _invalid([*unknown, {"field": "criteria", "message": "is required"}], "the preview")
    if unknown:
        raise _invalid(unknown, "the preview")
    try:
        return json_response(preview(data["criteria"], now=timezone.now()))
    except PreviewInvalid as exc:
        raise _invalid(exc.errors, "the criteria") from None


@api_view({"GET": "read", "POST": "admin"})
def bucket_members(request, slug):
    """GET: the active members, newest entry first. POST: add or remove members of a manual bucket."""
    bucket = _bucket(slug)
    if request.method == "POST":
        body = parse_json_object(request)
        try:
            return json_response(change_members(bucket, body, actor=request.actor, now=timezone.now()))
        except MembersInvalid as exc:
            if exc.status == 409:
                raise ApiError(409, "conflict", exc.errors[0]["message"]) from None
            raise _invalid(exc.errors, "the member change") from None
    members = BucketMembership.objects.filter(bucket=bucket, status="active").select_related("user")
    page = paginate(members, request.GET, ordering=("-entered_at", "-id"), salt=f"bucket-members:{bucket.pk}")
    return json_response({"items": [_member_json(m) for m in page.rows], "next_cursor": page.next_cursor})


def _member_json(membership: BucketMembership) -> dict:
    return {"user": canonical_ref(membership.user), "entered_at": membership.entered_at.isoformat(),
            "entry_count": membership.entry_count, "source": membership.source}


@api_view({"GET": "read"})
def user_buckets(request, user_ref):
    """The user's current buckets and their latest 100 past stays, newest first."""
    user = user_for_ref(request, user_ref)
    stays = BucketMembership.objects.filter(user=user).select_related("bucket").order_by("-entered_at", "-pk")
    current = [{"bucket": m.bucket.slug, "entered_at": m.entered_at.isoformat(), "entry_count": m.entry_count}
               for m in stays.filter(status="active")]
    past = [{"bucket": m.bucket.slug, "entered_at": m.entered_at.isoformat(),
             "left_at": m.left_at.isoformat(), "reason": m.leave_reason}
            for m in stays.filter(status="left")[:PAST_STAYS]]
    return json_response({"current": current, "past": past})
