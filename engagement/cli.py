"""Small helpers shared by the management commands (which stay thin shells)."""

from datetime import datetime

from django.core.management.base import CommandError
from django.utils import timezone

from .validation import Invalid, timestamp


def add_now_argument(parser) -> None:
    parser.add_argument(
        "--now", help="run as if it were this ISO 8601 time (UTC when no offset); default: now"
    )


def parse_now(value: str | None) -> datetime:
    if not value:
        return timezone.now()
    return parse_time(value, "--now")


def parse_time(value: str, option: str) -> datetime:
    try:
        return timestamp(value, option)
    except Invalid as exc:
        raise CommandError(f"{option}: {exc.errors[0]['message']}") from None
