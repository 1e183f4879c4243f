"""Identity resolution and merge: the one door every entry point uses to find a user.

Given any of external id, anonymous id and email, `resolve_user` finds the
user or creates one, fills in identifiers it lacks and, when the identifiers
point at several users, merges them into one survivor. `resolve_users` does
the same for a whole ingest batch with a fixed number of queries on the common
path (known users, brand-new users) and falls back to `resolve_user` only for
the rows that need a merge or a fill-in.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import OuterRef, Q, Subquery

from .models import EndUser, Membership, UserAlias
from .registry import entries

KINDS = ("external_id", "anonymous_id", "email")
RETRIES = 4


class IdentityConflict(Exception):
    """The identifiers name users with different external ids: never merged (HTTP 409)."""

    code = "identity_conflict"


@dataclass(frozen=True)
class Identifiers:
    external_id: str | None = None
    anonymous_id: str | None = None
    email: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "email", normalize_email(self.email))

    def pairs(self) -> list[tuple[str, str]]:
        return [(kind, getattr(self, kind)) for kind in KINDS if getattr(self, kind)]

    def __bool__(self) -> bool:
        return bool(self.pairs())


@dataclass
class Resolution:
    user: EndUser
    created: bool = False
    merged_ids: list[int] = field(default_factory=list)
    changed_fields: list[str] = field(default_factory=list)


def normalize_email(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip().lower()
    return value or None


def apply_properties_patch(properties: dict, patch: dict | None) -> dict:
    """Shallow merge: the patch wins and a `null` value deletes the key."""
    merged = dict(properties or {})
    for key, value in (patch or {}).items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def properties_patch_between(current: dict, desired: dict) -> dict:
    """The patch that turns `current` into `desired` (removed keys become `null`)."""
    patch = {key: None for key in current or {} if key not in desired}
    patch.update({k: v for k, v in desired.items() if (current or {}).get(k) != v})
    return patch


def identifiers_of(user: EndUser) -> Identifiers:
    """One identifier that names this live user (the strongest it has)."""
    for kind in KINDS:
        if getattr(user, kind):
            return Identifiers(**{kind: getattr(user, kind)})
    raise ValueError(f"user #{user.pk} has no identifier left (merged or erased)")


# --- lookups --------------------------------------------------------------


def _identifier_filter(pairs: Iterable[tuple[str, str]]) -> Q:
    by_kind: dict[str, set[str]] = {}
    for kind, value in pairs:
        by_kind.setdefault(kind, set()).add(value)
    query = Q(pk__in=[])
    for kind, values in by_kind.items():
        query |= Q(**{f"{kind}__in": values})
    return query


def _candidates(pairs: Sequence[tuple[str, str]], lock: bool = False) -> dict[int, EndUser]:
    """Live users holding any of the identifiers, directly or through a merge alias."""
    return _candidates_and_aliases(pairs, lock)[0]


def _candidates_and_aliases(
    pairs: Sequence[tuple[str, str]], lock: bool = False
) -> tuple[dict[int, EndUser], dict[tuple[str, str], int]]:
    """(user id → live user, (kind, value) → user id of each alias found); two queries."""
    if not pairs:
        return {}, {}
    aliases = {
        (kind, value): user_id
        for kind, value, user_id in UserAlias.objects.filter(_identifier_filter_alias(pairs)).values_list(
            "kind", "value", "user_id"
        )
    }
    query = EndUser.objects.filter(deleted_at__isnull=True).filter(
        _identifier_filter(pairs) | Q(pk__in=set(aliases.values()))
    )
    if lock:
        query = query.select_for_update().order_by("pk")
    return {user.pk: user for user in query}, aliases


def _identifier_filter_alias(pairs: Iterable[tuple[str, str]]) -> Q:
    """One `IN` per kind: an OR per identifier grows past SQLite's expression depth limit."""
    by_kind: dict[str, set[str]] = {}
    for kind, value in pairs:
        by_kind.setdefault(kind, set()).add(value)
    query = Q(pk__in=[])
    for kind, values in by_kind.items():
        query |= Q(kind=kind, value__in=values)
    return query


def find_user(ids: Identifiers) -> EndUser | None:
    """The live user these identifiers name, without creating or merging anything."""
    users = _candidates(ids.pairs())
    if len(users) == 1:
        return next(iter(users.values()))
    if not users:
        return None
    # Ambiguous read: prefer the strongest identifier.
    for kind, value in ids.pairs():
        for user in users.values():
            if getattr(user, kind) == value:
                return user
    return min(users.values(), key=lambda u: u.pk)


# --- linking by email from public keys ---------------------------------------

def as_public(identities: Sequence[Identifiers]) -> list[Identifiers]:
    """The identities as a public (`ingest`-only) key may use them, in order: each whose
    email would link it to that email's owner (`links_by_email`) goes `without_email`.
    One query. Native identify, native signals and Segment calls all go through it."""
    linking = links_by_email(identities)
    return [without_email(ids) if ids in linking else ids for ids in identities]


def without_email(ids: Identifiers) -> Identifiers:
    """The identifiers of a request from a public key whose email would link it to the
    email's owner (`links_by_email`): that email is not used to resolve the user.

    Dropping it, rather than refusing the request, answers exactly as a request with an
    email nobody has: a public key never learns whether an address belongs to a user."""
    return Identifiers(ids.external_id, ids.anonymous_id, None)


def links_by_email(identities: Sequence[Identifiers]) -> set[Identifiers]:
    """The identities that would attach their external or anonymous id to an existing user
    found only through their email. One query.

    An email sent from a public (`ingest`-only) key is unverified: anyone can type one. If it
    could link a new external id to the user who owns that email, a browser key would take
    that user over (its properties, its inbox through a user token minted for the new id, its
    erasure). Servers, which know their users' emails are theirs, use a key that also reads;
    public keys resolve such requests `without_email`.
    """
    emails = {ids.email for ids in identities if ids.email and (ids.external_id or ids.anonymous_id)}
    if not emails:
        return set()
    owners = {
        email: (external_id, anonymous_id)
        for email, external_id, anonymous_id in EndUser.objects.filter(
            deleted_at__isnull=True, email__in=emails
        ).values_list("email", "external_id", "anonymous_id")
    }
    return {
        ids for ids in identities
        if (ids.external_id or ids.anonymous_id) and ids.email in owners and _links(ids, *owners[ids.email])
    }


def _links(ids: Identifiers, external_id: str | None, anonymous_id: str | None) -> bool:
    """Whether the email is what ties the request to its owner: neither of the request's
    other identifiers names that owner already (a device's own anonymous id does)."""
    if ids.external_id and ids.external_id == external_id:
        return False
    return not (ids.anonymous_id and ids.anonymous_id == anonymous_id)


# --- resolving one identity -----------------------------------------------


def resolve_user(
    ids: Identifiers,
    *,
    now: datetime,
    properties: dict | None = None,
    timezone: str | None = None,
    locale: str | None = None,
) -> Resolution:
    """Find or create the user, fill identifiers, merge duplicates, apply the patch.

    Runs in a savepoint and retries when a concurrent request created the same
    identifier first, so two requests never create two users.
    """
    if not ids:
        raise ValueError("at least one identifier is required")
    for attempt in range(RETRIES):
        try:
            with transaction.atomic():
                resolution = _resolve_locked(ids, now)
                _apply_attributes(resolution, properties, timezone, locale)
                return resolution
        except IntegrityError:
            if attempt == RETRIES - 1:
                raise
    raise AssertionError("unreachable")


def _resolve_locked(ids: Identifiers, now: datetime) -> Resolution:
    users = list(_candidates(ids.pairs(), lock=True).values())
    _check_external_ids(users, ids)
    if not users:
        user = EndUser.objects.create(
            external_id=ids.external_id,
            anonymous_id=ids.anonymous_id,
            email=ids.email,
            first_seen_at=now,
        )
        return Resolution(user=user, created=True)
    merged_ids: list[int] = []
    if len(users) > 1:
        survivor = merge_users(users, now=now)
        merged_ids = [u.pk for u in users if u.pk != survivor.pk]
    else:
        survivor = users[0]
    changed = _fill_identifiers(survivor, ids, now)
    return Resolution(user=survivor, merged_ids=merged_ids, changed_fields=changed)


def _check_external_ids(users: Sequence[EndUser], ids: Identifiers) -> None:
    external = {u.external_id for u in users if u.external_id}
    if ids.external_id:
        external.add(ids.external_id)
    if len(external) > 1:
        raise IdentityConflict(conflict_message(users, ids))


KIND_LABELS = {"external_id": "external id", "anonymous_id": "anonymous id", "email": "email"}


def conflict_message(users: Sequence[EndUser], ids: Identifiers) -> str:
    """Which of the request's own identifiers collide, never whose they are.

    The answer may reach a public (`ingest`) key, so it names identifier kinds
    only: never another user's external id, nor that an email is taken by whom.
    """
    colliding = [kind for kind, value in ids.pairs() if _holder_external_id(users, ids, kind, value)]
    labels = [KIND_LABELS[kind] for kind in colliding] or [KIND_LABELS[k] for k, _ in ids.pairs()]
    return (
        f"the {' and '.join(labels)} in this request name users with different external ids, "
        "which are never merged"
    )


def _holder_external_id(users, ids: Identifiers, kind: str, value: str) -> str | None:
    if kind == "external_id":
        return value
    for user in users:
        if getattr(user, kind) == value:
            return user.external_id
    return None


def _fill_identifiers(user: EndUser, ids: Identifiers, now: datetime) -> list[str]:
    """Give the user identifiers it lacks; a new email replaces the old one.

    An extra anonymous id (a second device) becomes an alias of the user.
    """
    changed = []
    if ids.external_id and not user.external_id:
        user.external_id = ids.external_id
        changed.append("external_id")
    if ids.email and user.email != ids.email:
        user.email = ids.email
        changed.append("email")
    if ids.anonymous_id and user.anonymous_id != ids.anonymous_id:
        if not user.anonymous_id:
            user.anonymous_id = ids.anonymous_id
            changed.append("anonymous_id")
        else:
            _add_aliases(user, [("anonymous_id", ids.anonymous_id)], now)
    if changed:
        user.save(update_fields=changed)
    return changed


def _add_aliases(user: EndUser, pairs: Iterable[tuple[str, str]], now: datetime) -> None:
    for kind, value in pairs:
        UserAlias.objects.update_or_create(
            kind=kind, value=value, defaults={"user": user, "created_at": now}
        )


def _apply_attributes(resolution, properties, timezone, locale) -> None:
    user = resolution.user
    changed = []
    if properties:
        merged = apply_properties_patch(user.properties, properties)
        if merged != user.properties:
            user.properties = merged
            changed.append("properties")
    for name, value in (("timezone", timezone), ("locale", locale)):
        if value is not None and getattr(user, name) != value:
            setattr(user, name, value)
            changed.append(name)
    if changed:
        user.save(update_fields=changed)
        resolution.changed_fields.extend(changed)


# --- merge ----------------------------------------------------------------


def pick_survivor(users: Sequence[EndUser]) -> EndUser:
    """The one with an external id, else the oldest first_seen_at, else the lowest id."""
    return min(users, key=lambda u: (u.external_id is None, u.first_seen_at, u.pk))


def merge_users(users: Sequence[EndUser], *, now: datetime) -> EndUser:
    """Fold `users` into one survivor; losers are soft-deleted and leave aliases behind."""
    _check_external_ids(users, Identifiers())
    survivor = pick_survivor(users)
    losers = sorted((u for u in users if u.pk != survivor.pk), key=lambda u: u.pk)
    if not losers:
        return survivor
    for handler in entries("PULSE_USER_MERGE_HANDLERS"):
        handler(survivor, losers, now)

    properties: dict = {}
    for loser in losers:
        properties.update(loser.properties or {})
    properties.update(survivor.properties or {})
    survivor.properties = properties
    survivor.reengagement_opt_out = survivor.reengagement_opt_out or any(
        u.reengagement_opt_out for u in losers
    )
    survivor.first_seen_at = min(u.first_seen_at for u in users)
    seen = [u.last_seen_at for u in users if u.last_seen_at]
    survivor.last_seen_at = max(seen) if seen else None
    for name in ("timezone", "locale"):
        if not getattr(survivor, name):
            setattr(survivor, name, next((getattr(u, name) for u in losers if getattr(u, name)), ""))

    inherited = _retire_losers(survivor, losers, now)
    for kind, value in inherited:
        if not getattr(survivor, kind):
            setattr(survivor, kind, value)
    survivor.save()
    _add_aliases(
        survivor, [(k, v) for k, v in inherited if getattr(survivor, k) != v], now
    )
    refresh_primary_tenants([survivor.pk])
    survivor.refresh_from_db()
    return survivor


def _retire_losers(survivor: EndUser, losers: Sequence[EndUser], now) -> list[tuple[str, str]]:
    """Soft-delete the losers, freeing their identifiers; return those identifiers."""
    inherited = []
    loser_ids = [u.pk for u in losers]
    for loser in losers:
        inherited.extend((kind, getattr(loser, kind)) for kind in KINDS if getattr(loser, kind))
    # The losers' properties now live on the survivor; no second copy of personal data stays.
    EndUser.objects.filter(pk__in=loser_ids).update(
        deleted_at=now, merged_into=survivor, external_id=None, anonymous_id=None, email=None,
        properties={}, timezone="", locale="",
    )
    EndUser.objects.filter(merged_into_id__in=loser_ids).update(merged_into=survivor)
    UserAlias.objects.filter(user_id__in=loser_ids).update(user=survivor)
    return inherited


def refresh_primary_tenants(user_ids: Iterable[int]) -> None:
    """Primary tenant = the membership joined first, ties to the lowest membership id."""
    first = (
        Membership.objects.filter(user_id=OuterRef("pk"))
        .order_by("joined_at", "pk")
        .values("tenant_id")[:1]
    )
    EndUser.objects.filter(pk__in=list(user_ids)).update(primary_tenant_id=Subquery(first))


# --- resolving a batch ----------------------------------------------------


def resolve_users(
    identities: Sequence[Identifiers],
    *,
    now: datetime,
    conflicts: dict | None = None,
    resolutions: dict | None = None,
) -> dict[Identifiers, EndUser]:
    """Resolve every identity of an ingest batch; returns identity → live user.

    Known users and brand-new ones cost a fixed number of queries for the whole
    batch. Rows that need a merge, a fill-in or that overlap another new row
    go through `resolve_user` one by one, in order. When `conflicts` is a dict,
    an identity that raises IdentityConflict is left out of the result and
    recorded there (identity → message) instead of failing the whole batch.
    When `resolutions` is a dict, it receives identity → `Resolution`: whether
    the user was created, the users merged into it and the identifiers filled in.
    """
    distinct = list(dict.fromkeys(i for i in identities if i))
    all_pairs = sorted({pair for ids in distinct for pair in ids.pairs()})
    users, aliases = _candidates_and_aliases(all_pairs)
    by_pair = _index_by_pair(users.values())
    by_pair.update({pair: users[uid] for pair, uid in aliases.items() if uid in users})

    resolved: dict[Identifiers, EndUser] = {}
    fresh: list[Identifiers] = []
    fills: list[tuple[Identifiers, EndUser]] = []
    slow: list[Identifiers] = []
    claimed = _pair_counts(distinct)
    for ids in distinct:
        matched = {by_pair[p].pk: by_pair[p] for p in ids.pairs() if p in by_pair}
        if len(matched) == 1:
            user = next(iter(matched.values()))
            if _needs_nothing(user, ids, by_pair):
                resolved[ids] = user
            elif _simple_fill(user, ids, by_pair, claimed):
                fills.append((ids, user))
            else:
                slow.append(ids)
            continue
        (fresh if not matched else slow).append(ids)

    fresh, overlapping = _split_overlapping(fresh)
    slow.extend(overlapping)
    details: dict[Identifiers, Resolution] = {}
    created = _create_fresh(fresh, now, slow)
    details.update({ids: Resolution(user, created=True) for ids, user in created.items()})
    resolved.update(created)
    resolved.update(_fill_in_bulk(fills, now, slow, details))
    survivors: dict[int, EndUser] = {}
    for ids in slow:
        try:
            resolution = resolve_user(ids, now=now)
        except IdentityConflict as exc:
            if conflicts is None:
                raise
            conflicts[ids] = str(exc)
            continue
        resolved[ids] = resolution.user
        details[ids] = resolution
        survivors.update(dict.fromkeys(resolution.merged_ids, resolution.user))
    result = {ids: _follow(user, survivors) for ids, user in resolved.items()}
    if resolutions is not None:
        for ids, user in result.items():
            found = details.get(ids) or Resolution(user)
            resolutions[ids] = Resolution(user, found.created, list(found.merged_ids),
                                          list(found.changed_fields))
    return result


def _follow(user: EndUser, survivors: dict[int, EndUser]) -> EndUser:
    """Rows resolved before a later row of the batch merged their user away."""
    while user.pk in survivors:
        user = survivors[user.pk]
    return user


def _index_by_pair(users: Iterable[EndUser]) -> dict[tuple[str, str], EndUser]:
    index = {}
    for user in users:
        for kind in KINDS:
            if getattr(user, kind):
                index[(kind, getattr(user, kind))] = user
    return index


def _needs_nothing(user: EndUser, ids: Identifiers, by_pair) -> bool:
    return all(by_pair.get(pair) is user for pair in ids.pairs())


def _pair_counts(identities: Iterable[Identifiers]) -> dict[tuple[str, str], int]:
    counts: dict[tuple[str, str], int] = {}
    for ids in identities:
        for pair in ids.pairs():
            counts[pair] = counts.get(pair, 0) + 1
    return counts


def _split_overlapping(fresh: list[Identifiers]) -> tuple[list[Identifiers], list[Identifiers]]:
    counts = _pair_counts(fresh)
    alone = [ids for ids in fresh if all(counts[p] == 1 for p in ids.pairs())]
    shared = [ids for ids in fresh if any(counts[p] > 1 for p in ids.pairs())]
    return alone, shared


def _simple_fill(user: EndUser, ids: Identifiers, by_pair, claimed) -> bool:
    """One known user gains identifiers nobody holds and no other row of the batch names.

    The same rules as `_fill_identifiers`, applied in bulk; anything else (a
    second external id, a shared new identifier) takes the one-by-one path.
    """
    new = [pair for pair in ids.pairs() if pair not in by_pair]
    if any(claimed[pair] > 1 for pair in new):
        return False
    return not (ids.external_id and user.external_id and ids.external_id != user.external_id)


def _fill_in_bulk(fills: list[tuple[Identifiers, EndUser]], now, slow: list[Identifiers],
                  details: dict) -> dict:
    """Apply simple identifier fill-ins with one UPDATE and one alias INSERT; on a race, `slow`.

    The same rules as `_fill_identifiers`; `details` gets each identity's filled fields."""
    if not fills:
        return {}
    changed: dict[int, EndUser] = {}
    aliases: list[UserAlias] = []
    filled: dict[Identifiers, list[str]] = {}
    for ids, user in fills:
        fields = filled.setdefault(ids, [])
        if ids.external_id and not user.external_id:
            user.external_id = ids.external_id
            fields.append("external_id")
        if ids.email and user.email != ids.email:
            user.email = ids.email
            fields.append("email")
        if ids.anonymous_id and user.anonymous_id != ids.anonymous_id:
            if user.anonymous_id:
                aliases.append(UserAlias(kind="anonymous_id", value=ids.anonymous_id, user=user,
                                         created_at=now))
            else:
                user.anonymous_id = ids.anonymous_id
                fields.append("anonymous_id")
        changed[user.pk] = user
    try:
        with transaction.atomic():
            EndUser.objects.bulk_update(list(changed.values()), list(KINDS))
            UserAlias.objects.bulk_create(aliases)
    except IntegrityError:
        for _, user in fills:
            user.refresh_from_db()
        slow.extend(ids for ids, _ in fills)
        return {}
    details.update({ids: Resolution(user, changed_fields=filled[ids]) for ids, user in fills})
    return {ids: user for ids, user in fills}


def _create_fresh(fresh: list[Identifiers], now, slow: list[Identifiers]) -> dict:
    """Bulk-create users for identities nobody holds; on a race, fall back to `slow`."""
    if not fresh:
        return {}
    rows = [
        EndUser(
            external_id=i.external_id, anonymous_id=i.anonymous_id, email=i.email, first_seen_at=now
        )
        for i in fresh
    ]
    try:
        with transaction.atomic():
            created = EndUser.objects.bulk_create(rows)
    except IntegrityError:
        slow.extend(fresh)
        return {}
    return dict(zip(fresh, created, strict=True))
