"""Creating, changing and disabling bucket definitions: the rules the API and the admin share.

`clean_definition` checks a whole definition and reports every error at its
field (`slug`, `criteria.all[1].within` …) as `BucketInvalid`. The domain
functions take the actor and `now` as keyword arguments and record them.
"""

import re

from django.db import IntegrityError, transaction

from engagement.validation import unstorable_text_path

from .criteria import fingerprint, validate_criteria
from .models import Bucket

# Words that name routes beside /api/v1/buckets/<slug> now or later, and admin URLs.
RESERVED_SLUGS = frozenset({
    "preview", "new", "add", "search", "count", "members", "memberships", "export", "import",
    "backfill", "sweep", "sweeps", "transitions", "reactions", "history", "change", "delete",
})
SLUG = re.compile(r"[a-z0-9][a-z0-9_-]{0,99}")
FIELDS = ("slug", "name", "description", "kind", "criteria", "enabled")
KINDS = tuple(Bucket.Kind.values)


class BucketInvalid(ValueError):
    def __init__(self, errors: list[dict]):
        super().__init__("the bucket definition is invalid")
        self.errors = errors


class SlugTaken(ValueError):
    pass


def clean_definition(data: dict, *, slug: str | None = None) -> dict:
    """The definition's fields with defaults applied; raises BucketInvalid with every error.

    `slug` is the bucket's current slug when it is replaced (PUT): the body may
    repeat it but not change it.
    """
    errors = [{"field": key, "message": "unknown field"} for key in data if key not in FIELDS]
    cleaned = {
        "slug": data.get("slug", slug),
        "name": data.get("name"),
        "description": data.get("description", ""),
        "kind": data.get("kind", Bucket.Kind.DYNAMIC),
        "criteria": data.get("criteria"),
        "enabled": data.get("enabled", True),
    }
    errors += slug_errors(cleaned["slug"], current=slug)
    errors += _text_errors("name", cleaned["name"], required=True, longest=200)
    errors += _text_errors("description", cleaned["description"], required=False, longest=5000)
    if not isinstance(cleaned["enabled"], bool):
        errors.append({"field": "enabled", "message": "must be true or false"})
    errors += criteria_errors(cleaned["kind"], cleaned["criteria"], cleaned["slug"])
    if errors:
        raise BucketInvalid(errors)
    return cleaned


def slug_errors(value, *, current: str | None = None) -> list[dict]:
    if value is None:
        return [{"field": "slug", "message": "is required"}]
    if not isinstance(value, str) or not SLUG.fullmatch(value):
        return [{"field": "slug", "message": "must be 1 to 100 lower-case letters, digits, - or _, "
                 "starting with a letter or digit"}]
    if value in RESERVED_SLUGS:
        return [{"field": "slug", "message": f"{value!r} is a reserved word"}]
    if current is not None and value != current:
        return [{"field": "slug", "message": "a bucket's slug cannot change"}]
    return []


def _text_errors(field: str, value, *, required: bool, longest: int) -> list[dict]:
    if value is None and not required:
        return []
    if not isinstance(value, str) or (required and not value.strip()):
        return [{"field": field, "message": "is required" if value is None else "must be a non-empty string"
                 if required else "must be a string"}]
    if len(value) > longest:
        return [{"field": field, "message": f"at most {longest} characters"}]
    if unstorable_text_path(value, field):
        return [{"field": field, "message": "must be valid UTF-8 text without NUL characters"}]
    return []


def criteria_errors(kind, criteria, slug) -> list[dict]:
    if kind not in KINDS:
        return [{"field": "kind", "message": f"must be one of {', '.join(KINDS)}"}]
    if kind == Bucket.Kind.MANUAL:
        if criteria is None:
            return []
        return [{"field": "criteria", "message": "a manual bucket has no criteria"}]
    if criteria is None:
        return [{"field": "criteria", "message": "a dynamic bucket needs criteria"}]
    return validate_criteria(criteria, slug=slug if isinstance(slug, str) else None)


def create_bucket(data: dict, *, actor: str, now) -> Bucket:
    cleaned = clean_definition(data)
    bucket = Bucket(created_at=now, created_by=actor)
    try:
        with transaction.atomic():
            apply_definition(bucket, cleaned, actor=actor, now=now)
    except IntegrityError:
        raise SlugTaken(cleaned["slug"]) from None
    return bucket


def replace_bucket(bucket: Bucket, data: dict, *, actor: str, now) -> Bucket:
    """PUT: the whole definition replaced; omitted optional fields take their defaults."""
    return apply_definition(bucket, clean_definition(data, slug=bucket.slug), actor=actor, now=now)


def apply_definition(bucket: Bucket, cleaned: dict, *, actor: str, now) -> Bucket:
    """Save a cleaned definition onto `bucket` (new or not) with its fingerprint and actor."""
    for key, value in cleaned.items():
        setattr(bucket, key, value)
    bucket.criteria_fingerprint = fingerprint(cleaned["criteria"])
    if bucket.pk is None:
        bucket.created_at, bucket.created_by = now, actor
    bucket.updated_at, bucket.updated_by = now, actor
    bucket.save()
    return bucket


def disable_bucket(bucket: Bucket, *, actor: str, now) -> Bucket:
    bucket.enabled = False
    bucket.updated_at, bucket.updated_by = now, actor
    bucket.save(update_fields=["enabled", "updated_at", "updated_by"])
    return bucket


def bucket_json(bucket: Bucket) -> dict:
    return {
        "slug": bucket.slug, "name": bucket.name, "description": bucket.description, "kind": bucket.kind,
        "criteria": bucket.criteria, "enabled": bucket.enabled,
        "criteria_fingerprint": bucket.criteria_fingerprint, "last_error": bucket.last_error,
        "created_at": bucket.created_at.isoformat(), "created_by": bucket.created_by,
        "updated_at": bucket.updated_at.isoformat(), "updated_by": bucket.updated_by,
    }
