"""System check of the feature registry: a bad declaration stops start-up with a clear error.

    pulse.P001  a module of PULSE_PROFILE_FEATURE_MODULES does not import
    pulse.P002  two features have the same name
    pulse.P003  a feature's dtype is neither numeric nor categorical
    pulse.P004  a feature's TTL is not a positive duration
    pulse.P005  an `invalidated_by` name is not in the signal catalog (or not a list of names)
    pulse.P006  a feature name is malformed, or a group's compute cannot be called (user_ids, now)
"""

import inspect
import re
from datetime import timedelta

from django.conf import settings
from django.core import checks

from .catalog import ANY, known_names
from .registry import DTYPES, declared

NAME = re.compile(r"^[a-z][a-z0-9_]{0,199}$")


@checks.register("pulse")
def check_feature_registry(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    modules = list(getattr(settings, "PULSE_PROFILE_FEATURE_MODULES", ()))
    groups, failures = declared(modules)
    errors = [_error("P001", f"{module!r} does not import: {type(exc).__name__}: {exc}")
              for module, exc in failures]
    seen: dict[str, str] = {}
    catalog = known_names()
    for group in groups:
        if problem := _call_problem(group.compute):
            errors.append(_error("P006", f"group {group.name!r}: compute {problem}"))
        for feature in group.features:
            errors.extend(_feature_problems(feature, group.name, seen, catalog))
    return errors


def _feature_problems(feature, group: str, seen: dict, catalog) -> list[checks.Error]:
    name = feature.name
    errors = []
    if not isinstance(name, str) or not NAME.match(name):
        errors.append(_error("P006", f"feature {name!r} in {group!r}: a name is a lower-case identifier"))
    if name in seen:
        errors.append(_error("P002", f"feature {name!r} is declared twice ({seen[name]} and {group})"))
    seen.setdefault(name, group)
    if feature.dtype not in DTYPES:
        errors.append(_error("P003", f"feature {name!r}: dtype {feature.dtype!r} is not one of "
                                     f"{list(DTYPES)}"))
    if not isinstance(feature.ttl, timedelta) or feature.ttl <= timedelta(0):
        errors.append(_error("P004", f"feature {name!r}: ttl {feature.ttl!r} is not a positive duration"))
    if isinstance(feature.invalidated_by, str):
        errors.append(_error("P005", f"feature {name!r}: invalidated_by must be a list of signal names, "
                                     f"not the string {feature.invalidated_by!r}"))
        return errors
    for signal_name in feature.invalidated_by:
        if signal_name != ANY and signal_name not in catalog:
            errors.append(_error(
                "P005", f"feature {name!r}: invalidated_by names {signal_name!r}, which is not in the "
                "signal catalog", hint="add it to PULSE_SIGNAL_CATALOG if the deployment sends it, or fix "
                "the typo; '*' means any signal",
            ))
    return errors


def _call_problem(compute) -> str | None:
    if not callable(compute):
        return "is not callable"
    try:
        inspect.signature(compute).bind([], None)
    except TypeError as exc:
        return f"cannot be called as (user_ids, now): {exc}"
    except ValueError:
        return None
    return None


def _error(code: str, message: str, hint: str | None = None) -> checks.Error:
    return checks.Error(f"PULSE_PROFILE_FEATURE_MODULES: {message}", hint=hint, id=f"pulse.{code}")
