"""`<user_ref>` in URLs: a bare external id, or `anon:<id>`, `email:<address>`, `ext:<id>`."""

from urllib.parse import unquote

from .identity import Identifiers

PREFIXES = {"anon": "anonymous_id", "email": "email", "ext": "external_id"}


def parse_user_ref(ref: str) -> Identifiers:
    ref = unquote(ref or "").strip()
    if not ref or len(ref) > 330 or "\x00" in ref:
        raise ValueError("the user reference is empty or too long")
    prefix, sep, rest = ref.partition(":")
    if sep and prefix in PREFIXES:
        if not rest.strip():
            raise ValueError(f"'{prefix}:' must be followed by an identifier")
        return Identifiers(**{PREFIXES[prefix]: rest})
    return Identifiers(external_id=ref)
