"""System checks: every registry of engagement/extension_points.py is valid at start-up.

A typo in a dotted path, a handler with the wrong arity, a duplicate entry, a
user section whose key shadows a core field, a bad cron expression: each is an
Error from `manage.py check` (and from `migrate`, `runserver`, which run the
checks), naming the setting and the entry, instead of a failure at the first
drain or request. Ids:

    pulse.E001  an entry does not import
    pulse.E002  an entry is not callable the way the registry calls it
    pulse.E003  an entry is listed twice
    pulse.E004  the setting or an entry has the wrong type
    pulse.E005  a declared key is missing or malformed
    pulse.E006  a declared key collides with a core field or another entry
    pulse.E007  an OpenAPI fragment is malformed or collides with another
    pulse.E008  a schedule entry is malformed or its kind is not unique
    pulse.E009  a schedule's cron expression is invalid
    pulse.E010  a schedule's queue is not in RQ_QUEUES
    pulse.E011  a schedule's timeout is not a positive number of seconds
"""

import inspect
import math
import re
from collections.abc import Mapping
from datetime import timedelta

from croniter import croniter
from django.conf import settings
from django.core import checks
from django.utils.module_loading import import_string

from .extension_points import REGISTRIES, ScheduledJob

KEY = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
PATH_ITEM_FIELDS = {"summary", "description", "parameters", "servers"}
SCHEDULE_FIELDS = ("kind", "cron", "func", "queue", "timeout")
POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


@checks.register("pulse")
def check_registries(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    for setting, registry in REGISTRIES.items():
        errors.extend(VALIDATORS[registry.validate](setting, registry.protocol))
    return errors


def _error(code: str, setting: str, message: str, hint: str | None = None) -> checks.Error:
    return checks.Error(f"{setting}: {message}", hint=hint, id=f"pulse.{code}")


# --- lists of dotted paths --------------------------------------------------


def _paths(setting: str) -> tuple[list[str], list[checks.Error]]:
    """The setting's distinct dotted paths, and the errors of its malformed or repeated entries."""
    value = getattr(settings, setting, ())
    if value is None:
        return [], []
    if not isinstance(value, list | tuple):
        return [], [_error("E004", setting, f"must be a list of dotted paths, not {type(value).__name__}")]
    paths, errors = [], []
    for index, path in enumerate(value):
        if not isinstance(path, str) or not path.strip():
            errors.append(_error("E004", setting, f"entry {index} must be a dotted path, not {path!r}"))
        elif path in paths:
            errors.append(_error("E003", setting, f"{path!r} is listed twice"))
        else:
            paths.append(path)
    return paths, errors


def _import(setting: str, path: str, errors: list) -> object | None:
    try:
        return import_string(path)
    except ImportError as exc:
        errors.append(_error("E001", setting, f"{path!r} does not import: {exc}"))
    except Exception as exc:  # noqa: BLE001 - a module that fails to import for any reason
        errors.append(_error("E001", setting, f"importing {path!r} raised {type(exc).__name__}: {exc}"))
    return None


def call_problem(obj, protocol: type) -> str | None:
    """Why `obj` cannot be called as the protocol's `__call__` says, or None when it can."""
    params = list(inspect.signature(protocol.__call__).parameters.values())[1:]
    args = [p.name for p in params if p.kind in POSITIONAL]
    kwargs = {p.name: p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}
    shape = ", ".join([*args, *(f"{k}=" for k in kwargs)])
    if not callable(obj):
        return f"is not callable (it must be called as ({shape}))"
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return None  # some builtins have no signature; nothing to hold against them
    try:
        signature.bind(*args, **kwargs)
    except TypeError as exc:
        return f"cannot be called as ({shape}): {exc}"
    return None


def check_callables(setting: str, protocol: type) -> list[checks.Error]:
    paths, errors = _paths(setting)
    for path in paths:
        obj = _import(setting, path, errors)
        if obj is not None and (problem := call_problem(obj, protocol)):
            errors.append(_error("E002", setting, f"{path!r} {problem}"))
    return errors


# --- declared keys ------------------------------------------------------------


def _check_keys(setting: str, protocol: type, reserved: Mapping[str, str], callable_too: bool):
    paths, errors = _paths(setting)
    owners = dict(reserved)
    for path in paths:
        obj = _import(setting, path, errors)
        if obj is None:
            continue
        if callable_too and (problem := call_problem(obj, protocol)):
            errors.append(_error("E002", setting, f"{path!r} {problem}"))
        key = getattr(obj, "key", None)
        if not isinstance(key, str) or not KEY.match(key):
            errors.append(_error(
                "E005", setting, f"{path!r} declares no valid key (got {key!r})",
                hint="a lower-case identifier, e.g. @user_section('lifecycle') "
                "from engagement.extension_points",
            ))
        elif key in owners:
            errors.append(_error("E006", setting, f"{path!r} declares key {key!r}, already {owners[key]}"))
        else:
            owners[key] = f"declared by {path!r}"
    return errors


def check_user_sections(setting: str, protocol: type) -> list[checks.Error]:
    from .views.users import RESERVED_KEYS

    reserved = {key: "a core field of the user" for key in RESERVED_KEYS}
    return _check_keys(setting, protocol, reserved, callable_too=True)


def check_keyed_objects(setting: str, protocol: type) -> list[checks.Error]:
    return _check_keys(setting, protocol, {}, callable_too=False)


# --- OpenAPI fragments --------------------------------------------------------


def check_fragments(setting: str, protocol: type) -> list[checks.Error]:
    from .openapi import merge_paths

    paths, errors = _paths(setting)
    merged: dict = {}
    components: dict = {}
    for path in paths:
        fragment = _import(setting, path, errors)
        if fragment is None:
            continue
        problem = fragment_problem(fragment)
        if problem is None:
            try:
                merge_paths(merged, fragment.get("paths", {}))
            except ValueError as exc:
                problem = str(exc)
        problem = problem or _component_clash(components, fragment.get("components", {}))
        if problem:
            errors.append(_error("E007", setting, f"{path!r}: {problem}"))
    return errors


def fragment_problem(fragment) -> str | None:
    if not isinstance(fragment, Mapping):
        return f"is a {type(fragment).__name__}, not a mapping"
    if unknown := set(fragment) - {"paths", "components"}:
        return f"has unknown top-level keys {sorted(map(str, unknown))}"
    paths = fragment.get("paths", {})
    if not isinstance(paths, Mapping):
        return "`paths` is not a mapping"
    for route, item in paths.items():
        if not isinstance(route, str) or not route.startswith("/"):
            return f"path {route!r} does not start with /"
        if not isinstance(item, Mapping):
            return f"{route} is not a mapping of methods"
        if unknown := {str(k) for k in item} - HTTP_METHODS - PATH_ITEM_FIELDS:
            return f"{route} has unknown methods {sorted(unknown)}"
    components = fragment.get("components", {})
    if not isinstance(components, Mapping) or not all(isinstance(v, Mapping) for v in components.values()):
        return "`components` is not a mapping of mappings"
    return None


def _component_clash(seen: dict, components: Mapping) -> str | None:
    """The same component name with two different definitions silently loses one."""
    for section, values in components.items():
        for name, value in values.items():
            earlier = seen.setdefault(section, {}).setdefault(name, value)
            if earlier != value:
                return f"components.{section}.{name} differs from an earlier fragment's"
    return None


# --- one dotted path ----------------------------------------------------------


def check_single_path(setting: str, protocol: type) -> list[checks.Error]:
    path = getattr(settings, setting, None)
    if path in (None, ""):
        return []
    if not isinstance(path, str):
        return [_error("E004", setting, f"must be one dotted path, not {type(path).__name__}")]
    errors: list = []
    obj = _import(setting, path, errors)
    if obj is not None and (problem := call_problem(obj, protocol)):
        errors.append(_error("E002", setting, f"{path!r} {problem}"))
    return errors


# --- schedules ----------------------------------------------------------------


def schedule_fields(entry) -> dict | None:
    """A schedule entry as a dict: a (kind, cron, func[, queue[, timeout]]) tuple, a mapping,
    or an object with those attributes (engagement.scheduler.Schedule); None if none of these."""
    if isinstance(entry, Mapping):
        return dict(entry)
    if isinstance(entry, list | tuple):
        return dict(zip(SCHEDULE_FIELDS, entry, strict=False)) if 3 <= len(entry) <= 5 else None
    if all(hasattr(entry, name) for name in SCHEDULE_FIELDS[:3]):
        return {name: getattr(entry, name) for name in SCHEDULE_FIELDS if hasattr(entry, name)}
    return None


def check_schedules(setting: str, protocol: type) -> list[checks.Error]:
    value = getattr(settings, setting, ())
    if not isinstance(value, list | tuple):
        return [_error("E004", setting, f"must be a list of schedules, not {type(value).__name__}")]
    errors: list = []
    kinds: set = set()
    for index, entry in enumerate(value):
        fields = schedule_fields(entry)
        if fields is None:
            errors.append(_error("E008", setting, f"entry {index} is not (kind, cron, func[, queue[, "
                                 f"timeout]]): {entry!r}"[:300]))
            continue
        kind = fields.get("kind")
        if not isinstance(kind, str) or not kind:
            errors.append(_error("E008", setting, f"entry {index} has no kind"))
        elif kind in kinds:
            errors.append(_error("E008", setting, f"kind {kind!r} is scheduled twice"))
        kinds.add(kind)
        errors.extend(_schedule_problems(setting, f"schedule {kind!r}", fields))
    return errors


def _schedule_problems(setting: str, name: str, fields: dict) -> list[checks.Error]:
    errors = []
    cron = fields.get("cron")
    if not isinstance(cron, str) or not croniter.is_valid(cron) or len(cron.split()) > 5:
        errors.append(_error("E009", setting, f"{name}: {cron!r} is not a five-field cron expression"))
    func = fields.get("func")
    if not isinstance(func, str) or not func:
        errors.append(_error("E004", setting, f"{name}: func must be a dotted path, not {func!r}"))
    else:
        obj = _import(setting, func, errors)
        if obj is not None and (problem := call_problem(obj, ScheduledJob)):
            errors.append(_error("E002", setting, f"{name}: {func!r} {problem}"))
    queue = fields.get("queue")
    if queue is not None and queue not in getattr(settings, "RQ_QUEUES", {}):
        errors.append(_error("E010", setting, f"{name}: queue {queue!r} is not in RQ_QUEUES"))
    timeout = fields.get("timeout")
    if timeout is not None and not _positive_seconds(timeout):
        errors.append(_error("E011", setting, f"{name}: timeout {timeout!r} is not a positive number "
                             "of seconds"))
    return errors


def _positive_seconds(value) -> bool:
    if isinstance(value, timedelta):
        return value > timedelta(0)
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return number and math.isfinite(value) and value > 0


VALIDATORS = {
    "callables": check_callables,
    "sections": check_user_sections,
    "keys": check_keyed_objects,
    "fragments": check_fragments,
    "path": check_single_path,
    "schedules": check_schedules,
}
