"""Pulse's version, read once from pyproject.toml (its one source; the project is run, not installed)."""

import tomllib
from functools import lru_cache

from django.conf import settings


@lru_cache(maxsize=1)
def pulse_version() -> str:
    try:
        with open(settings.BASE_DIR / "pyproject.toml", "rb") as file:
            return str(tomllib.load(file)["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"
