"""Checking a bucket's entry limit and reactions, every error at its path.

    "entry_limit": {"kind": "always" | "once" | "once_per_period", "period"?: "30d"}
    "reactions": [{"id": "welcome", "on": "enter" | "leave", "reasons"?: ["criteria"],
                   "action": {"message": KEY} | {"webhook": KEY} | {"signal": NAME}}]

A `message` names a live template; a `webhook` a live webhook template of
category `system`; a `signal` a name that is not one of Pulse's `$` names.
Only leave reactions take `reasons`, from the reasons that fire reactions.
"""

import re
from datetime import timedelta

from campaigns.models import Category, Channel
from campaigns.outbox import live_templates
from engagement.signal_names import is_reserved

from .criteria.durations import LONGEST, parse_duration
from .entry_limits import KINDS, ONCE_PER_PERIOD
from .models import LeaveReason

REACTION_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
MAX_REACTIONS = 50
FIRING_REASONS = (LeaveReason.CRITERIA.value, LeaveReason.MANUAL.value)  # the clock adds its own
ACTIONS = ("message", "webhook", "signal")
REACTION_FIELDS = ("id", "on", "reasons", "action")


def clean_entry_limit(value, errors: list) -> tuple[str, timedelta | None]:
    if value is None:
        return "always", None
    if not isinstance(value, dict):
        errors.append({"field": "entry_limit", "message": "must be an object: {kind, period?}"})
        return "always", None
    errors.extend({"field": f"entry_limit.{key}", "message": "unknown field"}
                  for key in value if key not in ("kind", "period"))
    kind, period = value.get("kind"), value.get("period")
    if kind not in KINDS:
        errors.append({"field": "entry_limit.kind", "message": f"must be one of {', '.join(KINDS)}"})
        return "always", None
    if kind != ONCE_PER_PERIOD:
        if period is not None:
            errors.append({"field": "entry_limit.period",
                           "message": f"only {ONCE_PER_PERIOD} takes a period"})
        return kind, None
    try:
        parsed = parse_duration(period)
    except ValueError as exc:
        errors.append({"field": "entry_limit.period", "message": f"is required and {exc}"
                       if period is None else str(exc)})
        return kind, None
    if parsed > LONGEST:
        errors.append({"field": "entry_limit.period", "message": "a period is at most 3650d"})
    return kind, parsed


def clean_reactions(value, errors: list) -> list[dict]:
    """The reactions as {key, on, reasons, action, target, index}; errors appended at their paths."""
    if value is None:
        return []
    if not isinstance(value, list):
        errors.append({"field": "reactions", "message": "must be a list of reactions"})
        return []
    if len(value) > MAX_REACTIONS:
        errors.append({"field": "reactions", "message": f"at most {MAX_REACTIONS} reactions"})
        return []
    cleaned, seen = [], set()
    for index, reaction in enumerate(value):
        here = f"reactions[{index}]"
        found = clean_reaction(reaction, here, errors)
        if found is None:
            continue
        found["index"] = index
        if found["key"] in seen:
            errors.append({"field": f"{here}.id", "message": "another reaction of this bucket has this id"})
        seen.add(found["key"])
        cleaned.append(found)
    _check_templates(cleaned, errors)
    return cleaned


def clean_reaction(reaction, here: str, errors: list) -> dict | None:
    if not isinstance(reaction, dict):
        errors.append({"field": here, "message": "a reaction is an object: {id, on, reasons?, action}"})
        return None
    before = len(errors)
    errors.extend({"field": f"{here}.{key}", "message": "unknown field"}
                  for key in reaction if key not in REACTION_FIELDS)
    key, on, reasons = reaction.get("id"), reaction.get("on"), reaction.get("reasons")
    if not isinstance(key, str) or not REACTION_ID.fullmatch(key):
        errors.append({"field": f"{here}.id", "message": "is required: 1 to 64 lower-case letters, digits, "
                       "- or _, starting with a letter or digit"})
    if on not in ("enter", "leave"):
        errors.append({"field": f"{here}.on", "message": "must be enter or leave"})
    if reasons is not None:
        if on != "leave":
            errors.append({"field": f"{here}.reasons", "message": "only a leave reaction takes reasons"})
        elif (not isinstance(reasons, list) or not reasons
              or not all(isinstance(r, str) and r in FIRING_REASONS for r in reasons)):
            errors.append({"field": f"{here}.reasons", "message": "a non-empty list of: "
                           f"{', '.join(FIRING_REASONS)} (disabled and erased leaves never fire)"})
    action, target = _action(reaction.get("action"), f"{here}.action", errors)
    if len(errors) > before:
        return None
    return {"key": key, "on": on, "reasons": sorted(set(reasons or [])), "action": action, "target": target}


def _action(value, here: str, errors: list) -> tuple[str | None, str | None]:
    if not isinstance(value, dict) or len(value) != 1 or next(iter(value)) not in ACTIONS:
        errors.append({"field": here, "message": "is required: exactly one of "
                       "{\"message\": TEMPLATE_KEY}, {\"webhook\": TEMPLATE_KEY}, {\"signal\": NAME}"})
        return None, None
    action, target = next(iter(value.items()))
    if not isinstance(target, str) or not 1 <= len(target) <= 200 or target != target.strip():
        errors.append({"field": f"{here}.{action}", "message": "must be a name of 1 to 200 characters"})
        return None, None
    if action == "signal" and is_reserved(target):
        errors.append({"field": f"{here}.signal", "message": "names starting with '$' are Pulse's own"})
    return action, target


def _check_templates(cleaned: list[dict], errors: list) -> None:
    """One query for every template the reactions name."""
    wanted = {r["target"] for r in cleaned if r["action"] != "signal"}
    templates = live_templates(wanted) if wanted else {}
    for reaction in cleaned:
        if reaction["action"] == "signal":
            continue
        here = f"reactions[{reaction['index']}].action.{reaction['action']}"
        template = templates.get(reaction["target"])
        if template is None:
            errors.append({"field": here, "message": f"no live template {reaction['target']!r}"})
        elif reaction["action"] == "webhook" and (
            template.channel != Channel.WEBHOOK or template.current_version.category != Category.SYSTEM
        ):
            errors.append({"field": here, "message": "a webhook reaction names a webhook template of "
                           "category system"})
