"""Ordered registries named in settings: how a lower layer calls upward.

The contracts are in engagement/extension_points.py, the start-up validation in
engagement/checks.py, and the why in docs/ARCHITECTURE.md ("Apps, layers and
what each owns").
"""

from functools import cache

from django.conf import settings
from django.utils.module_loading import import_string


@cache
def _load(paths: tuple[str, ...]) -> tuple:
    return tuple(import_string(path) for path in paths)


def entries(setting_name: str) -> tuple:
    """The objects named by the dotted paths in `settings.<setting_name>`, in order."""
    return _load(tuple(getattr(settings, setting_name, ())))
