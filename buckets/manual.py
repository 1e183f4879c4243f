"""Manual members: staff or an admin key add and remove users of a `manual` bucket by ref.

`change_members(bucket, body, actor=, now=)` takes `{"add"?: [refs], "remove"?: [refs]}`
(at most 1,000 refs in all). Malformed input is `MembersInvalid` with every
error at its path (`add[3]`); refs that name no live user are reported by
index in the answer and the others still apply. Refs resolve set-based (two
queries for any number). Additions join with source `manual`, removals leave
with reason `manual`; both fire the bucket's reactions (a staff action is live).
"""

from engagement.identity import KINDS, _candidates_and_aliases
from engagement.refs import InvalidRef, parse_user_ref

from .candidates import BucketSpec
from .memberships import Cause, join, leave
from .models import Bucket, LeaveReason, MembershipSource

MAX_REFS = 1000
FIELDS = ("add", "remove")


class MembersInvalid(ValueError):
    def __init__(self, errors: list[dict], status: int = 400):
        super().__init__("the member change is invalid")
        self.errors, self.status = errors, status


def change_members(bucket: Bucket, body: dict, *, actor: str, now) -> dict:
    if bucket.kind != Bucket.Kind.MANUAL:
        raise MembersInvalid([{"field": "", "message": "only a manual bucket's members are changed by "
                               "hand: a dynamic bucket's follow its criteria"}], status=409)
    if not bucket.enabled:
        raise MembersInvalid([{"field": "", "message": "the bucket is disabled"}], status=409)
    parsed = _parse(body)
    users = resolve_refs([ids for _, _, ids in parsed])
    unknown = [{"field": f"{name}[{index}]", "message": "no such user"}
               for (name, index, ids) in parsed if users.get(ids) is None]
    wanted = {name: sorted({users[ids] for (n, _, ids) in parsed if n == name and users.get(ids)})
              for name in FIELDS}
    both = set(wanted["add"]) & set(wanted["remove"])
    if both:
        raise MembersInvalid([{"field": "remove", "message": "a user is both added and removed"}])
    spec = BucketSpec.of(bucket)
    cause = Cause(MembershipSource.MANUAL, actor)
    joined = join(spec, wanted["add"], cause=cause, now=now)
    left = leave(spec, wanted["remove"], reason=LeaveReason.MANUAL, cause=cause, now=now)
    return {"added": len(joined), "removed": len(left), "unknown": unknown}


def _parse(body: dict) -> list[tuple[str, int, object]]:
    errors = [{"field": key, "message": "unknown field"} for key in body if key not in FIELDS]
    if not any(key in body for key in FIELDS):
        errors.append({"field": "add", "message": "give add or remove, a list of user refs"})
    parsed, total = [], 0
    for name in FIELDS:
        refs = body.get(name, [])
        if not isinstance(refs, list):
            errors.append({"field": name, "message": "must be a list of user refs"})
            continue
        total += len(refs)
        for index, ref in enumerate(refs[:MAX_REFS]):
            try:
                ids = parse_user_ref(ref) if isinstance(ref, str) else None
            except InvalidRef as exc:
                errors.append({"field": f"{name}[{index}]", "message": str(exc)})
                continue
            if ids is None:
                errors.append({"field": f"{name}[{index}]", "message": "a user ref is a string"})
                continue
            parsed.append((name, index, ids))
    if total > MAX_REFS:
        errors = [{"field": "add" if "add" in body else "remove",
                   "message": f"at most {MAX_REFS} refs in add and remove together"}]
    if errors:
        raise MembersInvalid(errors)
    return parsed


def resolve_refs(identifiers) -> dict:
    """Identifiers → the live user id each names (directly or through a merge alias), set-based."""
    pairs = sorted({pair for ids in identifiers for pair in ids.pairs()})
    users, aliases = _candidates_and_aliases(pairs)
    holder = {(kind, getattr(u, kind)): u.pk for u in users.values() for kind in KINDS if getattr(u, kind)}
    found = {}
    for ids in identifiers:
        (pair,) = ids.pairs()
        user_id = holder.get(pair) or aliases.get(pair)
        found[ids] = user_id if user_id in users else None
    return found
