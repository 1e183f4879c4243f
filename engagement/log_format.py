"""One log record, one `key=value` line, with no personal data (docs/ARCHITECTURE.md §4).

`KeyValueFormatter` renders every record as

    ts=2025-01-31T12:00:00.123Z level=INFO logger=pulse.drain event=drain_batch size=3 …

and makes three promises whoever logged the record:

* **One line.** Control characters (C0, DEL, C1), Unicode line separators,
  bidi and zero-width controls and lone surrogates are escaped as `\\n`, `\\xNN`,
  `\\uNNNN`; a backslash becomes `\\\\`, so the escaping can be read back
  unambiguously. A value with a space, a quote or `=` is quoted.
* **Pulse's own messages stay key=value.** Loggers named `pulse.*` write
  `event=… key=%s` templates; their arguments are escaped and quoted one by one.
  Other libraries' free text becomes one quoted `msg="…"` value.
* **No request paths, no exception messages.** Django's request and security
  records (`Not Found: /api/v1/users/email:…`) and gunicorn's error records
  carry raw paths; they are rewritten to the route pattern. A traceback keeps
  its frames and exception types, but the messages are withheld, since a
  database error may quote the row it choked on (`Key (email)=(…)`).
  `exception_messages=True` (LOG_EXCEPTION_MESSAGES=1) keeps them, for a
  developer's machine only.

The module imports nothing from Django at import time: gunicorn's master
process uses the formatter before Django is set up.
"""

import logging
import numbers
import re
import traceback
from collections.abc import Mapping
from datetime import UTC, datetime

from .access_log import method_of, route_of

_UNSAFE = re.compile(
    "[\\\\\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e"
    "\u2060-\u206f\ufeff\ufff9-\ufffb\ud800-\udfff]"
)
# The same without the backslash: for text whose values are already escaped.
_CONTROL = re.compile(_UNSAFE.pattern.replace("\\\\", "", 1))
_SHORT = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_NEEDS_QUOTES = re.compile(r'[\s"=]')
WITHHELD = "<withheld>"


def _escape_char(match: re.Match) -> str:
    char = match.group()
    if char in _SHORT:
        return _SHORT[char]
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def escape(text: str) -> str:
    """The text on one line: control and invisible characters, and backslashes, escaped."""
    return _UNSAFE.sub(_escape_char, text)


def quote(value) -> str:
    """A key=value value: escaped, and in double quotes when it is empty or holds a space, `"` or `=`."""
    text = escape(value if isinstance(value, str) else str(value))
    if text and not _NEEDS_QUOTES.search(text):
        return text
    return '"' + text.replace('"', '\\"') + '"'


def kv(**fields) -> str:
    return " ".join(f"{key}={quote(value)}" for key, value in fields.items())


def _safe_arg(value):
    """A %-argument for a key=value template: numbers as they are, anything else quoted."""
    if isinstance(value, numbers.Number):
        return value
    return quote(value)


class KeyValueFormatter(logging.Formatter):
    def __init__(self, exception_messages: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.exception_messages = exception_messages

    def format(self, record: logging.LogRecord) -> str:
        line = " ".join(
            (
                f"ts={timestamp(record.created)}",
                f"level={record.levelname}",
                f"logger={quote(record.name)}",
                message(record),
            )
        )
        if record.exc_info and record.exc_info[1] is not None:
            line += " traceback=" + quote(format_exception(record.exc_info[1], self.exception_messages))
        if record.stack_info:
            line += " stack=" + quote(record.stack_info)
        return line


def timestamp(created: float) -> str:
    """ISO 8601 in UTC with milliseconds: no space, so `ts=` is one value."""
    moment = datetime.fromtimestamp(created, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def message(record: logging.LogRecord) -> str:
    """The record's message as key=value text, rewritten where it would carry a path."""
    for rewrite in (_django_request_message, _django_server_message, _gunicorn_message):
        rewritten = rewrite(record)
        if rewritten is not None:
            return rewritten
    if record.name == "pulse" or record.name.startswith("pulse."):
        return _template_message(record)
    return "msg=" + quote(_plain_message(record))


def _plain_message(record: logging.LogRecord) -> str:
    """getMessage(), or the template and its arguments side by side when they do not fit."""
    try:
        return record.getMessage()
    except Exception:  # noqa: BLE001 - a bad log call must not lose the record
        return f"{record.msg} args={record.args!r}"


def _template_message(record: logging.LogRecord) -> str:
    template = str(record.msg)
    try:
        if isinstance(record.args, Mapping):
            text = template % {key: _safe_arg(value) for key, value in record.args.items()}
        elif record.args:
            text = template % tuple(_safe_arg(arg) for arg in record.args)
        else:
            text = template
    except (TypeError, ValueError, KeyError):
        return "msg=" + quote(_plain_message(record))
    # The values are escaped already; the template is code, but keep it on one line too.
    return _CONTROL.sub(_escape_char, text)


# --- records that would carry a raw path ----------------------------------
# django.security.DisallowedHost says which Host header was refused: a host name,
# which operators need to fix ALLOWED_HOSTS. Other security messages may quote a
# Referer, an Origin or a redirect target, which can hold anything.
_DETAIL_KEPT = {"django.security.DisallowedHost"}


def _django_request_message(record: logging.LogRecord) -> str | None:
    if not (record.name == "django.request" or record.name.startswith("django.security")):
        return None
    request = getattr(record, "request", None)
    if request is None or not hasattr(request, "path"):
        return None
    fields = {
        "event": "request_failed" if record.name == "django.request" else "request_refused",
        "status": getattr(record, "status_code", "-"),
        "method": method_of(request),
        "route": route_of(request),
    }
    if record.name in _DETAIL_KEPT:
        fields["detail"] = record.getMessage()
    return kv(**fields)


def _django_server_message(record: logging.LogRecord) -> str | None:
    """runserver's request line (`"GET /path HTTP/1.1" 404 12`): the access log has the route."""
    if record.name != "django.server" or not hasattr(record, "status_code"):
        return None
    return kv(event="runserver_request", status=record.status_code)


_GUNICORN_INVALID = re.compile(r"^(Invalid request from ip=[^:\s]*)")


def _gunicorn_message(record: logging.LogRecord) -> str | None:
    """gunicorn quotes the request line or URI when it rejects or fails a request."""
    if record.name != "gunicorn.error":
        return None
    template = str(record.msg)
    if template.startswith("Error handling request"):
        return "msg=" + quote("Error handling request")
    invalid = _GUNICORN_INVALID.match(template)
    if invalid:
        return "msg=" + quote(invalid.group(1))
    return None


# --- exceptions -------------------------------------------------------------
def format_exception(exc: BaseException, with_messages: bool = False) -> str:
    """A traceback (chained causes included) whose exception messages are withheld unless asked."""
    return "".join(_exception_lines(exc, with_messages, set())).rstrip("\n")


def _exception_lines(exc: BaseException, with_messages: bool, seen: set[int]) -> list[str]:
    seen.add(id(exc))
    lines: list[str] = []
    cause, context = exc.__cause__, exc.__context__
    if cause is not None and id(cause) not in seen:
        lines += _exception_lines(cause, with_messages, seen)
        lines.append("\nThe above exception was the direct cause of the following exception:\n\n")
    elif context is not None and not exc.__suppress_context__ and id(context) not in seen:
        lines += _exception_lines(context, with_messages, seen)
        lines.append("\nDuring handling of the above exception, another exception occurred:\n\n")
    if exc.__traceback__ is not None:
        lines.append("Traceback (most recent call last):\n")
        lines += traceback.format_tb(exc.__traceback__)
    lines.append(_exception_summary(exc, with_messages))
    return lines


def _exception_summary(exc: BaseException, with_messages: bool) -> str:
    kind = type(exc)
    name = kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
    if with_messages:
        return "".join(traceback.format_exception_only(kind, exc))
    return f"{name}: {WITHHELD}\n" if str_is_set(exc) else f"{name}\n"


def str_is_set(exc: BaseException) -> bool:
    try:
        return bool(str(exc))
    except Exception:  # noqa: BLE001 - a broken __str__ must not break logging
        return True


def gunicorn_logconfig(exception_messages: bool = False) -> dict:
    """gunicorn's `logconfig_dict`: its error log in the same shape, its access log silenced."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "kv": {"()": f"{__name__}.KeyValueFormatter", "exception_messages": exception_messages},
        },
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "kv", "stream": "ext://sys.stderr"},
            "null": {"class": "logging.NullHandler"},
        },
        "root": {"level": "INFO", "handlers": ["stderr"]},
        "loggers": {
            # No level: gunicorn's --log-level stays in charge.
            "gunicorn.error": {"handlers": ["stderr"], "propagate": False},
            "gunicorn.access": {"level": "CRITICAL", "handlers": ["null"], "propagate": False},
        },
    }
