"""Validation of criteria: every error, each at its path (`criteria.all[1].within`).

First the size guard (depth and number of conditions, so hostile input costs
nothing), then the JSON Schema of `schema.py` through `jsonschema`, then the
semantic rules JSON Schema cannot state: one kind per condition, no empty
composite, operators and their values, reserved event names, windows, the
sources this deployment has, references to other buckets (no cycle), and the
positivity of dynamic buckets. Answers are lists of
`{"field": path, "message": text}`, the details of the API's error shape.
"""

from collections.abc import Callable

from jsonschema import Draft202012Validator

from engagement.validation import unstorable_text_path

from . import sources
from .compiler import stored_bucket
from .durations import LONGEST, parse_duration
from .positivity import is_positive
from .schema import COMPOSITES, KINDS, SCHEMA

MAX_DEPTH = 12
MAX_CONDITIONS = 500
RESERVED_EVENT_PREFIX = "$bucket."
_validator = Draft202012Validator(SCHEMA)
POSITIVE = ("a dynamic bucket must be positive, matchable only by users with something to show for "
            "it: add a condition such as an event that exists, a count of at least 1, a property or "
            "profile value, a lifecycle state, a tenant or a bucket; not, neq, not_exists and counts "
            "that zero meets cannot stand on their own")


def field_path(prefix: str, parts) -> str:
    path = prefix
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def validate_criteria(criteria, *, slug: str | None = None, positive: bool = True,
                      prefix: str = "criteria", bucket: Callable = stored_bucket) -> list[dict]:
    """Every error in `criteria` (empty when valid). `slug` is the bucket being saved, for
    cycle checks; `positive` asks for the positivity of a dynamic bucket."""
    if not isinstance(criteria, dict):
        return [{"field": prefix, "message": "criteria must be a JSON object (a condition)"}]
    too_big = _size_error(criteria)
    if too_big:
        return [{"field": prefix, "message": too_big}]
    bad_text = unstorable_text_path(criteria, prefix)
    if bad_text:
        return [{"field": bad_text, "message": "must be valid UTF-8 text without NUL characters"}]
    errors = [_schema_error(error, prefix) for error in _validator.iter_errors(criteria)]
    errors.extend(Semantics(prefix, slug, bucket).check(criteria, ()))
    if positive and not errors and not is_positive(criteria):
        errors.append({"field": prefix, "message": POSITIVE})
    return _unique(errors)


def _size_error(criteria) -> str | None:
    """Depth and size, walked without recursion."""
    stack, count = [(criteria, 1)], 0
    while stack:
        node, depth = stack.pop()
        count += 1
        if depth > MAX_DEPTH:
            return f"criteria nest at most {MAX_DEPTH} levels deep"
        if count > MAX_CONDITIONS:
            return f"criteria hold at most {MAX_CONDITIONS} conditions and values"
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack.extend((child, depth + 1) for child in children)
    return None


def _schema_error(error, prefix: str) -> dict:
    parts = list(error.absolute_path)
    if error.validator == "additionalProperties":
        unexpected = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        return {"field": field_path(prefix, [*parts, unexpected[0]]),
                "message": f"unknown field {', '.join(unexpected)!s} for this kind of condition"}
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else ""
        return {"field": field_path(prefix, [*parts, missing] if missing else parts),
                "message": "is required"}
    if error.validator == "pattern" and "[smhd]" in error.schema["pattern"]:
        return {"field": field_path(prefix, parts), "message": "must be a duration like 90s, 15m, 48h or 7d"}
    if error.validator == "pattern":
        return {"field": field_path(prefix, parts),
                "message": "must be a property path: object keys joined by dots (address.city), "
                "without quotes, brackets, backslashes or all-digit keys"}
    if error.validator == "anyOf" and parts and parts[-1] == "value":
        return {"field": field_path(prefix, parts),
                "message": "must be a string, a number, true or false, or a list of those"}
    return {"field": field_path(prefix, parts), "message": error.message}


def _unique(errors: list[dict]) -> list[dict]:
    seen, kept = set(), []
    for error in errors:
        key = (error["field"], error["message"])
        if key not in seen:
            seen.add(key)
            kept.append(error)
    return kept


class Semantics:
    """The rules beyond the schema, walked over whatever shape the input has."""

    def __init__(self, prefix: str, slug: str | None, bucket: Callable):
        self.prefix, self.slug, self.bucket = prefix, slug, bucket

    def error(self, parts, message: str) -> dict:
        return {"field": field_path(self.prefix, parts), "message": message}

    def check(self, node, parts) -> list[dict]:
        if not isinstance(node, dict):
            return []
        kinds = [kind for kind in KINDS if kind in node]
        if not kinds:
            return [self.error(parts, f"a condition names one of: {', '.join(KINDS)}")]
        if len(kinds) > 1:
            return [self.error(parts, "a condition names exactly one kind; "
                               f"this one names {' and '.join(kinds)}")]
        kind = kinds[0]
        if kind in COMPOSITES:
            return self.composite(node, kind, parts)
        return getattr(self, kind)(node, parts)

    def composite(self, node, kind, parts) -> list[dict]:
        if kind == "not":
            return self.check(node["not"], [*parts, "not"])
        children = node[kind]
        if not isinstance(children, list):
            return []
        if not children:
            return [self.error([*parts, kind],
                               f"an empty {kind} is not allowed: give it at least one condition")]
        errors = []
        for index, child in enumerate(children):
            errors.extend(self.check(child, [*parts, kind, index]))
        return errors

    def event(self, node, parts) -> list[dict]:
        errors = []
        name = node.get("event")
        if isinstance(name, str) and name.startswith(RESERVED_EVENT_PREFIX):
            errors.append(self.error([*parts, "event"], f"event names starting with {RESERVED_EVENT_PREFIX} "
                                     "are reserved: a bucket cannot watch bucket transitions"))
        if node.get("check") == "count":
            errors.extend(self.error([*parts, key], "a count needs op and value (a whole number)")
                          for key in ("op", "value") if key not in node)
        elif node.get("check") in ("exists", "not_exists"):
            errors.extend(self.error([*parts, key], f"only a count takes {key}")
                          for key in ("op", "value") if key in node)
        errors.extend(self.window(node.get("within"), [*parts, "within"]))
        where = node.get("where")
        if isinstance(where, list):
            if not where:
                errors.append(self.error([*parts, "where"], "an empty where is not allowed: leave it out"))
            for index, condition in enumerate(where):
                errors.extend(self.operator(condition, [*parts, "where", index]))
        return errors

    def window(self, within, parts) -> list[dict]:
        if within is None:
            return []
        try:
            if parse_duration(within) > LONGEST:
                return [self.error(parts, "a window is at most 3650d")]
        except ValueError:
            pass  # the schema reports it
        return []

    def property(self, node, parts) -> list[dict]:
        return self.operator(node, parts)

    def operator(self, node, parts, *, booleans: bool = True, ordered_strings: bool = True) -> list[dict]:
        """The value an operator takes: none for (not_)exists, a non-empty list for in, a scalar else."""
        if not isinstance(node, dict):
            return []
        op, here = node.get("op"), [*parts, "value"]
        has_value, value = "value" in node, node.get("value")
        if op in ("exists", "not_exists"):
            return [self.error(here, f"{op} takes no value")] if has_value else []
        if not has_value:
            return [self.error(here, f"{op} needs a value")] if isinstance(op, str) else []
        values = value if op == "in" else [value]
        if op == "in" and (not isinstance(value, list) or not value):
            return [self.error(here, "in takes a non-empty list of values")]
        if op != "in" and isinstance(value, list):
            return [self.error(here, f"{op} takes one value, not a list (use in)")]
        if value is None:
            return [self.error(here, "null is not a value: use exists or not_exists")]
        if not booleans and any(isinstance(v, bool) for v in values):
            return [self.error(here, "profile values are numbers or strings")]
        if op in ("gt", "gte", "lt", "lte") and any(isinstance(v, bool) for v in values):
            return [self.error(here, f"{op} compares numbers or strings")]
        if op in ("gt", "gte", "lt", "lte") and not ordered_strings and isinstance(value, str):
            return [self.error(here, f"{op} compares a profile feature with a number")]
        if op == "contains" and not booleans and not isinstance(value, str):
            return [self.error(here, "contains on a profile feature takes a string")]
        return []

    def profile(self, node, parts) -> list[dict]:
        if sources.profile_model() is None:
            return [self.error([*parts, "profile"], sources.UNAVAILABLE["profile"])]
        return self.operator(node, parts, booleans=False, ordered_strings=False)

    def lifecycle(self, node, parts) -> list[dict]:
        here = [*parts, "lifecycle"]
        if sources.lifecycle_model() is None:
            return [self.error(here, sources.UNAVAILABLE["lifecycle"])]
        states = node["lifecycle"] if isinstance(node["lifecycle"], list) else [node["lifecycle"]]
        if not states:
            return [self.error(here, "name at least one lifecycle state")]
        known = sources.known_states()
        unknown = [s for s in states if isinstance(s, str) and known is not None and s not in known]
        if unknown:
            return [self.error(here, f"unknown lifecycle state {', '.join(unknown)}; "
                               f"the states are {', '.join(sorted(known))}")]
        return []

    def tenant(self, node, parts) -> list[dict]:
        return []

    def in_bucket(self, node, parts) -> list[dict]:
        slug, here = node.get("in_bucket"), [*parts, "in_bucket"]
        if not isinstance(slug, str):
            return []
        if slug == self.slug:
            return [self.error(here, "a bucket cannot contain itself")]
        found = self.bucket(slug)
        if found is None:
            return [self.error(here, f"no bucket {slug!r}")]
        if self.slug is not None and self.reaches(found[1], {slug}):
            return [self.error(here, f"{slug!r} leads back to this bucket: criteria cannot form a cycle")]
        return []

    def reaches(self, criteria, seen: set) -> bool:
        """Whether stored criteria lead, through in_bucket, back to the bucket being saved."""
        for referenced in referenced_buckets(criteria):
            if referenced == self.slug:
                return True
            if referenced in seen:
                continue
            seen.add(referenced)
            found = self.bucket(referenced)
            if found is not None and self.reaches(found[1], seen):
                return True
        return False


def referenced_buckets(node) -> list[str]:
    """The slugs an in_bucket anywhere in `node` names."""
    found, stack = [], [node]
    while stack:
        current = stack.pop()
        if isinstance(current, dict):
            if isinstance(current.get("in_bucket"), str):
                found.append(current["in_bucket"])
            stack.extend(current.values())
        elif isinstance(current, list):
            stack.extend(current)
    return found
