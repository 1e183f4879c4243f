"""Strict validation of JSON objects: unknown fields and wrong types are named.

A spec maps each allowed field to a `Field`. `validate(data, spec)` returns the
cleaned dict, or raises `Invalid` carrying every problem found as
`{"field": "a.b", "message": "..."}`, so a client can fix them all at once.
"""

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.utils.dateparse import parse_datetime

MAX_JSON_DEPTH = 12
INT_MIN, INT_MAX = -(2**63), 2**63 - 1


class OutOfRangeInteger:
    """An integer literal outside 64 bits, kept in place of its value by `strict_json_loads`.

    Neither database compares such a number as an integer (SQLite turns it into
    a float), and past 4,300 digits Python cannot even parse it. Keeping a
    marker instead of failing the whole body lets validation reject only the
    item that holds it, naming its field.
    """

    __slots__ = ()

    def __repr__(self):
        return "<integer out of range>"


OUT_OF_RANGE = OutOfRangeInteger()


def strict_json_loads(text: str | bytes, *, finite: bool = True):
    """json.loads that refuses NaN and Infinity (not JSON) and, with `finite`, numbers too
    large for a float (1e400) or integers outside 64 bits, which no database stores. Raises
    ValueError. A batch body is parsed with `finite=False` so such a number rejects only its
    own item (`json_object`, `string`, … name the field)."""
    return json.loads(
        text,
        parse_constant=_refuse_constant,
        parse_float=_finite_float if finite else float,
        parse_int=_strict_int if finite else _int_or_marker,
    )


def _int_or_marker(text: str):
    digits = len(text) - text.startswith("-")
    if digits > 19:
        return OUT_OF_RANGE
    value = int(text)
    return value if INT_MIN <= value <= INT_MAX else OUT_OF_RANGE


def _strict_int(text: str) -> int:
    value = _int_or_marker(text)
    if value is OUT_OF_RANGE:
        raise ValueError(f"the integer {text[:20]}… is outside the 64-bit range")
    return value


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"the number {text[:40]} is out of range")
    return value


class Invalid(Exception):
    def __init__(self, errors: list[dict]):
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))
        self.errors = errors


@dataclass(frozen=True)
class Field:
    check: Callable[[object, str], object]
    required: bool = False
    nullable: bool = False


def validate(data, spec: dict[str, Field], path: str = "") -> dict:
    if not isinstance(data, dict):
        raise Invalid([{"field": path or "(root)", "message": "must be an object"}])
    errors: list[dict] = []
    clean: dict = {}
    for name in data:
        if name not in spec:
            errors.append({"field": _join(path, name), "message": "unknown field"})
    for name, field in spec.items():
        where = _join(path, name)
        if name not in data:
            if field.required:
                errors.append({"field": where, "message": "is required"})
            continue
        value = data[name]
        if value is None and field.nullable:
            clean[name] = None
            continue
        try:
            clean[name] = field.check(value, where)
        except Invalid as exc:
            errors.extend(exc.errors)
    if errors:
        raise Invalid(errors)
    return clean


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def fail(where: str, message: str):
    """Raise Invalid for one field; custom checks call it."""
    raise Invalid([{"field": where, "message": message}])


_fail = fail


# --- checks ---------------------------------------------------------------


def string(max_length: int, min_length: int = 1) -> Callable:
    def check(value, where):
        if not isinstance(value, str):
            _fail(where, f"must be a string, not {_type_name(value)}")
        if _bad_text(value):
            _fail(where, "must be valid UTF-8 text without NUL characters")
        if len(value.strip()) < min_length:
            _fail(where, "must not be empty")
        if len(value) > max_length:
            _fail(where, f"must be at most {max_length} characters")
        return value

    return check


def email_address(max_length: int) -> Callable:
    """An email address of at most `max_length` characters, lowercased (the limit: `schemas`)."""

    def check(value, where):
        value = string(max_length)(value, where).strip()
        local, _, domain = value.partition("@")
        if not local or "." not in domain or any(c.isspace() for c in value):
            _fail(where, "must be an email address")
        return value.lower()

    return check


def boolean(value, where):
    if not isinstance(value, bool):
        _fail(where, f"must be true or false, not {_type_name(value)}")
    return value


def json_object(max_depth: int = MAX_JSON_DEPTH) -> Callable:
    def check(value, where):
        if not isinstance(value, dict):
            _fail(where, f"must be an object, not {_type_name(value)}")
        if _depth(value) > max_depth:
            _fail(where, f"nests deeper than {max_depth} levels")
        if _has_bad_text(value):
            _fail(where, "must hold valid UTF-8 text without NUL characters, and numbers in range "
                  "(finite, integers within 64 bits)")
        return value

    return check


# A date alone ("2026-12-01", which Python's ISO parser reads as midnight) is not a moment:
# an hour guessed for it would misplace the signal in every window and time zone.
_HAS_TIME = re.compile(r"\d[T ]\d")


def timestamp(value, where, *, date_is_midnight: bool = False) -> datetime:
    """ISO 8601 date-time; without an offset it is taken as UTC. A bare date is refused
    unless `date_is_midnight` (an operator's `--now 2026-12-15` means that day's start)."""
    if not isinstance(value, str):
        _fail(where, f"must be an ISO 8601 date-time string, not {_type_name(value)}")
    try:
        parsed = parse_datetime(value.strip()) if date_is_midnight or _HAS_TIME.search(value) else None
    except ValueError:
        parsed = None
    if parsed is None:
        _fail(where, "must be an ISO 8601 date-time such as 2026-01-31T12:00:00Z")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        _fail(where, "is out of range")


def time_zone_name(max_length: int) -> Callable:
    """An IANA time zone name (the limit: `schemas`)."""

    def check(value, where) -> str:
        value = string(max_length)(value, where)
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            _fail(where, "must be an IANA time zone such as Europe/Paris")
        return value

    return check


def nested(spec: dict[str, Field]) -> Callable:
    def check(value, where):
        return validate(value, spec, where)

    return check


def list_of(item_check: Callable, max_items: int) -> Callable:
    def check(value, where):
        if not isinstance(value, list):
            _fail(where, f"must be an array, not {_type_name(value)}")
        if len(value) > max_items:
            _fail(where, f"must hold at most {max_items} items")
        out, errors = [], []
        for index, item in enumerate(value):
            try:
                out.append(item_check(item, f"{where}[{index}]"))
            except Invalid as exc:
                errors.extend(exc.errors)
        if errors:
            raise Invalid(errors)
        return out

    return check


def _type_name(value) -> str:
    return {
        bool: "a boolean", int: "a number", float: "a number", str: "a string",
        list: "an array", dict: "an object", type(None): "null",
        OutOfRangeInteger: "an integer outside the 64-bit range",
    }.get(type(value), type(value).__name__)


def _depth(value, level: int = 0) -> int:
    if level > MAX_JSON_DEPTH + 1:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level + 1)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level + 1)
    return level


def unstorable_text_path(value, path: str) -> str | None:
    """The path of the first key or string in a JSON value that no database can hold (NUL,
    lone surrogates), or None. Walked without recursion, so any depth is safe."""
    stack = [(value, path)]
    while stack:
        node, where = stack.pop()
        if isinstance(node, str) and _bad_text(node):
            return where
        if isinstance(node, dict):
            for key, child in node.items():
                if isinstance(key, str) and _bad_text(key):
                    return where
                stack.append((child, f"{where}.{key}" if where else str(key)))
        elif isinstance(node, list):
            stack.extend((child, f"{where}[{i}]") for i, child in enumerate(node))
    return None


def _bad_text(value: str) -> bool:
    """NUL and lone surrogates (\\ud800) are valid JSON but no database stores them."""
    if "\x00" in value:
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _has_bad_text(value) -> bool:
    if value is OUT_OF_RANGE:
        return True
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, str):
        return _bad_text(value)
    if isinstance(value, dict):
        return any(_has_bad_text(k) or _has_bad_text(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_bad_text(v) for v in value)
    return False
