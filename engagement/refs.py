"""`<user_ref>`: how a URL, a request body or an answer names one user.

A ref is an identifier exactly as stored, in one of these forms:

- `ext:<external id>`, `anon:<anonymous id>`, `email:<address>`;
- a bare external id (anything without one of those prefixes);
- `b64:<base64url of one of the forms above>` (padding optional), for an
  identifier that cannot travel inside one URL path segment: a `/` is a
  segment boundary even when sent as `%2F`, because the server sees the
  decoded path.

Nothing is stripped and nothing is decoded a second time: the web server has
already percent-decoded the path once, so `/api/v1/users/%20spacey` names the
user ` spacey` and `/api/v1/users/%2541` names the user `%41`.

Every answer that names a user uses `canonical_ref(user)`: the prefixed form
of its strongest identifier (external id, else anonymous id, else email), or
the `b64:` form of that when the identifier holds a `/`. A canonical ref is
always accepted back, once percent-encoded as a path segment.
"""

import base64
import binascii

from .identity import KINDS, Identifiers

PREFIXES = {"ext": "external_id", "anon": "anonymous_id", "email": "email"}
PREFIX_OF = {kind: prefix for prefix, kind in PREFIXES.items()}
ENCODED = "b64"
MAX_LENGTH = 330


class InvalidRef(ValueError):
    """The ref cannot name any user; the message says why (it never echoes the ref)."""


def parse_user_ref(ref: str) -> Identifiers:
    """The identifiers a ref names; raises InvalidRef."""
    if not isinstance(ref, str) or not ref:
        raise InvalidRef("the user reference is empty")
    if ref.startswith(ENCODED + ":"):
        ref = _decode(ref[len(ENCODED) + 1 :])
    if len(ref) > MAX_LENGTH:
        raise InvalidRef(f"the user reference is longer than {MAX_LENGTH} characters")
    if "\x00" in ref:
        raise InvalidRef("the user reference contains a NUL character")
    prefix, sep, rest = ref.partition(":")
    if sep and prefix in PREFIXES:
        if not rest:
            raise InvalidRef(f"'{prefix}:' must be followed by an identifier")
        return Identifiers(**{PREFIXES[prefix]: rest})
    return Identifiers(external_id=ref)


def _decode(encoded: str) -> str:
    if not encoded:
        raise InvalidRef("'b64:' must be followed by a base64url-encoded reference")
    try:
        raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        text = raw.decode("utf-8")
    except (binascii.Error, ValueError):
        raise InvalidRef("the text after 'b64:' is not base64url-encoded UTF-8") from None
    if not text or text.startswith(ENCODED + ":"):
        raise InvalidRef("a 'b64:' reference must encode a non-empty, non-encoded reference")
    return text


def canonical_ref(user) -> str | None:
    """The one ref answers use for `user`; None when it has no identifier left (erased)."""
    for kind in KINDS:
        value = getattr(user, kind)
        if value:
            return ref_for(kind, value)
    return None


def ref_for(kind: str, value: str) -> str:
    ref = f"{PREFIX_OF[kind]}:{value}"
    if "/" in ref:
        return f"{ENCODED}:{base64.urlsafe_b64encode(ref.encode()).decode().rstrip('=')}"
    return ref
