"""`/api/v1/buckets`: define, list, read and disable buckets, and preview criteria."""

from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils import timezone

from engagement.api import ApiError, api_view, json_response, parse_json_object
from engagement.pagination import paginate

from .definitions import BucketInvalid, SlugTaken, bucket_json, create_bucket, disable_bucket, replace_bucket
from .models import Bucket
from .preview import PreviewInvalid, preview


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


@api_view({"GET": "read", "PUT": "admin", "DELETE": "admin"})
def bucket_detail(request, slug):
    try:
        bucket = get_object_or_404(Bucket, slug=slug)
    except Http404:
        raise ApiError(404, "not_found", "no such bucket") from None
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
