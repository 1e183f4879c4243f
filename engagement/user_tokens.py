"""Short-lived signed user tokens: a client app acting for one signed-in user.

A server holding a `send` key mints a token for one user
(`POST /api/v1/users/<user_ref>/token`) and hands it to its client app, which
sends it as `Authorization: Bearer ut_…`. The token is Django's signing of
`{"u": <user pk>, "exp": <unix time>}` under a salt of its own, so it is
tamper-proof and needs no table; it expires on its own (default one hour).

A token opens only the routes that opt in to it, and only for its own user
(see `api.api_view(user_token=…)`); everywhere else it is refused with 401.
An erased user's tokens stop working at once; a merged user's tokens act for
the survivor.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core import signing

from .models import EndUser

PREFIX = "ut_"
SALT = "pulse.user-token.v1"
MAX_LENGTH = 400


@dataclass(frozen=True)
class UserToken:
    """An authenticated user token: whom it acts for and until when."""

    user_id: int
    expires_at: datetime

    name = "user_token"  # the actor recorded for what a token does

    def allows(self, scope: str) -> bool:
        return False  # a token holds no scope: routes opt in to tokens explicitly


def mint(user: EndUser, *, now: datetime, ttl: timedelta | None = None) -> tuple[str, datetime]:
    """A token for `user`, valid for `ttl` (default PULSE_USER_TOKEN_TTL) from `now`."""
    ttl = ttl or settings.PULSE_USER_TOKEN_TTL
    expires_at = (now + ttl).replace(microsecond=0)
    payload = {"u": user.pk, "exp": int(expires_at.timestamp())}
    return PREFIX + signing.dumps(payload, salt=SALT, compress=False), expires_at


def looks_like_token(raw: str | None) -> bool:
    return bool(raw) and raw.startswith(PREFIX)


def verify(raw: str, *, now: datetime) -> UserToken | None:
    """The token's user, or None when it is forged, expired or its user is gone."""
    if not looks_like_token(raw) or len(raw) > MAX_LENGTH:
        return None
    try:
        payload = signing.loads(raw[len(PREFIX) :], salt=SALT)
    except signing.BadSignature:
        return None
    if not isinstance(payload, dict):
        return None
    user_id, expires = payload.get("u"), payload.get("exp")
    if not isinstance(user_id, int) or not isinstance(expires, int) or expires <= now.timestamp():
        return None
    survivor = _live_user_id(user_id)
    if survivor is None:
        return None
    return UserToken(user_id=survivor, expires_at=datetime.fromtimestamp(expires, UTC))


def _live_user_id(user_id: int) -> int | None:
    """The live user a token's user id stands for now: itself, its merge survivor, or none."""
    row = EndUser.objects.filter(pk=user_id).values("deleted_at", "merged_into_id").first()
    if row is None:
        return None
    if row["merged_into_id"]:
        return _live_user_id(row["merged_into_id"]) if row["merged_into_id"] != user_id else None
    return None if row["deleted_at"] else user_id
