"""`manage.py check` (and every process start) reports a bad schedule or tick hook."""

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string


def check_schedules(app_configs=None, **kwargs) -> list[checks.Error]:
    from .schedules import schedules

    try:
        loaded = schedules()
    except ImproperlyConfigured as exc:
        return [checks.Error(str(exc), id="pulse.E001")]
    errors = []
    paths = [(f"PULSE_SCHEDULES ({s.kind}) func", s.func) for s in loaded]
    paths += [(f"PULSE_TICK_HOOKS[{i}]", path)
              for i, path in enumerate(getattr(settings, "PULSE_TICK_HOOKS", ()))]
    for where, path in paths:
        try:
            import_string(path)
        except ImportError as exc:
            errors.append(checks.Error(f"{where}: cannot import {path!r}: {exc}", id="pulse.E002"))
    return errors
