"""Creating, changing and disabling bucket definitions: the rules the API and the admin share.

`clean_definition` checks a whole definition and reports every error at its
field (`slug`, `criteria.all[1].within` …) as `BucketInvalid`. The domain
functions take the actor and `now` as keyword arguments and record them.
"""

import re

from django.db import IntegrityError, transaction

from engagement.validation import unstorable_text_path

from .criteria import fingerprint, validate_criteria
from .index_version import bump_version
from .models import Bucket, BucketReaction
from .reaction_rules import clean_entry_limit, clean_reactions

# Words that name routes beside /api/v1/buckets/<slug> now or later, and admin URLs.
RESERVED_SLUGS = frozenset({
    "preview", "new", "add", "search", "count", "members", "memberships", "export", "import",
    "backfill", "sweep", "sweeps", "transitions", "reactions", "history", "change", "delete",
})
SLUG = re.compile(r"[a-z0-9][a-z0-9_-]{0,99}")
FIELDS = ("slug", "name", "description", "kind", "criteria", "enabled", "entry_limit", "reactions")
COLUMNS = ("slug", "name", "description", "kind", "criteria", "enabled", "entry_limit", "entry_period")
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
    cleaned["entry_limit"], cleaned["entry_period"] = clean_entry_limit(data.get("entry_limit"), errors)
    cleaned["reactions"] = clean_reactions(data.get("reactions"), errors)
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


def apply_definition(bucket: Bucket, cleaned: dict, *, actor: str, now, reactions: bool = True) -> Bucket:
    """Save a cleaned definition onto `bucket` (new or not) with its fingerprint and actor.

    A changed fingerprint has the next evaluations re-check the members; a bucket
    turned off loses its members (reason `disabled`); the candidate index version
    moves with the change. `reactions=False` leaves the stored reactions alone
    (the admin saves them through its inline)."""
    was_enabled = bucket.pk is not None and Bucket.objects.filter(pk=bucket.pk, enabled=True).exists()
    stored = Bucket.objects.filter(pk=bucket.pk).values_list("criteria_fingerprint", flat=True)
    old_fingerprint = stored.first()
    for key in COLUMNS:
        if key in cleaned:
            setattr(bucket, key, cleaned[key])
    bucket.criteria_fingerprint = fingerprint(cleaned["criteria"])
    if old_fingerprint is not None and old_fingerprint != bucket.criteria_fingerprint:
        bucket.reevaluate_members = bucket.kind == Bucket.Kind.DYNAMIC
    if bucket.pk is None:
        bucket.created_at, bucket.created_by = now, actor
    bucket.updated_at, bucket.updated_by = now, actor
    with transaction.atomic():
        bucket.save()
        if reactions:
            save_reactions(bucket, cleaned.get("reactions", []))
        if was_enabled and not bucket.enabled:
            remove_members(bucket, actor=actor, now=now)
        bump_version()
    return bucket


def save_reactions(bucket: Bucket, reactions: list[dict]) -> None:
    BucketReaction.objects.filter(bucket=bucket).delete()
    BucketReaction.objects.bulk_create([
        BucketReaction(bucket=bucket, key=r["key"], on=r["on"], reasons=r["reasons"], action=r["action"],
                       target=r["target"], position=position)
        for position, r in enumerate(reactions)
    ])


def remove_members(bucket: Bucket, *, actor: str, now) -> list[dict]:
    """Every active member leaves with reason `disabled`: transitions and `$bucket.left`
    signals are written (other buckets chain on them); no reaction of this bucket fires."""
    from .candidates import BucketSpec
    from .memberships import Cause, leave
    from .models import LeaveReason, MembershipSource

    spec = BucketSpec.of(bucket)
    cause = Cause(MembershipSource.MANUAL, actor)
    return leave(spec, None, reason=LeaveReason.DISABLED, cause=cause, now=now)


def disable_bucket(bucket: Bucket, *, actor: str, now) -> Bucket:
    with transaction.atomic():
        was_enabled = Bucket.objects.filter(pk=bucket.pk, enabled=True).exists()
        bucket.enabled = False
        bucket.updated_at, bucket.updated_by = now, actor
        bucket.save(update_fields=["enabled", "updated_at", "updated_by"])
        if was_enabled:
            remove_members(bucket, actor=actor, now=now)
        bump_version()
    return bucket


def bucket_json(bucket: Bucket) -> dict:
    return {
        "slug": bucket.slug, "name": bucket.name, "description": bucket.description, "kind": bucket.kind,
        "criteria": bucket.criteria, "enabled": bucket.enabled,
        "entry_limit": entry_limit_json(bucket),
        "reactions": [reaction_json(r) for r in bucket.reactions.all()],
        "criteria_fingerprint": bucket.criteria_fingerprint, "last_error": bucket.last_error,
        "created_at": bucket.created_at.isoformat(), "created_by": bucket.created_by,
        "updated_at": bucket.updated_at.isoformat(), "updated_by": bucket.updated_by,
    }


def entry_limit_json(bucket: Bucket) -> dict:
    limit = {"kind": bucket.entry_limit}
    if bucket.entry_period is not None:
        limit["period"] = duration_text(bucket.entry_period)
    return limit


def duration_text(period) -> str:
    seconds = int(period.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def reaction_json(reaction: BucketReaction) -> dict:
    body = {"id": reaction.key, "on": reaction.on, "action": {reaction.action: reaction.target}}
    if reaction.reasons:
        body["reasons"] = list(reaction.reasons)
    return body
