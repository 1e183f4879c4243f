"""The schedules declared in `settings.PULSE_SCHEDULES`, validated when they are read.

Each entry is a dict: `kind` (the JobRun kind), `cron` (a UTC cron
expression), `func` (dotted path to `fn(run, now) -> JobResult`), and
optionally `queue` (an RQ_QUEUES name, default `default`) and `timeout` (the
RQ job timeout in seconds, default 600). A bad entry raises
ImproperlyConfigured naming it; `manage.py check` reports it at start-up.
"""

from dataclasses import dataclass
from datetime import UTC, datetime

from croniter import croniter
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

DEFAULT_QUEUE = "default"
DEFAULT_TIMEOUT = 600
MAX_TIMEOUT = 24 * 3600
MAX_KIND_LENGTH = 100  # JobRun.kind
MAX_MISSED_WINDOWS = 24
KEYS = {"kind", "cron", "func", "queue", "timeout"}
REQUIRED = ("kind", "cron", "func")


@dataclass(frozen=True)
class Schedule:
    kind: str
    cron: str
    func: str
    queue: str = DEFAULT_QUEUE
    timeout: int = DEFAULT_TIMEOUT

    def latest_window(self, now: datetime) -> datetime:
        """The most recent fire time at or before `now` (UTC)."""
        now = now.astimezone(UTC)
        if croniter.match(self.cron, now.replace(second=0, microsecond=0)):
            return now.replace(second=0, microsecond=0)
        return croniter(self.cron, now).get_prev(datetime).astimezone(UTC)

    def windows_between(self, after: datetime, until: datetime) -> list[datetime]:
        """Fire times strictly between `after` and `until`, at most MAX_MISSED_WINDOWS + 1."""
        out, it = [], croniter(self.cron, after.astimezone(UTC))
        while len(out) <= MAX_MISSED_WINDOWS:
            moment = it.get_next(datetime).astimezone(UTC)
            if moment >= until:
                break
            out.append(moment)
        return out


def schedules() -> list[Schedule]:
    entries = getattr(settings, "PULSE_SCHEDULES", [])
    loaded = [load_schedule(entry, f"PULSE_SCHEDULES[{i}]") for i, entry in enumerate(entries)]
    kinds = [schedule.kind for schedule in loaded]
    duplicates = sorted({kind for kind in kinds if kinds.count(kind) > 1})
    if duplicates:
        raise ImproperlyConfigured(f"PULSE_SCHEDULES: kind declared twice: {', '.join(duplicates)}")
    return loaded


def get_schedule(kind: str) -> Schedule:
    known = schedules()
    for schedule in known:
        if schedule.kind == kind:
            return schedule
    raise KeyError(f"no schedule named {kind!r}; known: {', '.join(s.kind for s in known)}")


def load_schedule(entry, where: str = "schedule") -> Schedule:
    """One settings entry as a Schedule, or ImproperlyConfigured saying what is wrong with it."""
    if not isinstance(entry, dict):
        raise ImproperlyConfigured(f"{where}: must be a dict with {', '.join(REQUIRED)}, not "
                                   f"{type(entry).__name__}")
    unknown = sorted(set(entry) - KEYS, key=str)
    if unknown:
        raise ImproperlyConfigured(f"{where}: unknown keys: {', '.join(map(str, unknown))}")
    missing = [key for key in REQUIRED if key not in entry]
    if missing:
        raise ImproperlyConfigured(f"{where}: missing {', '.join(missing)}")
    schedule = Schedule(**entry)
    problem = next(_problems(schedule), None)
    if problem:
        raise ImproperlyConfigured(f"{where} ({str(schedule.kind)[:MAX_KIND_LENGTH]}): {problem}")
    return schedule


def _problems(s: Schedule):
    if not isinstance(s.kind, str) or not s.kind or len(s.kind) > MAX_KIND_LENGTH:
        yield f"kind must be a non-empty string of at most {MAX_KIND_LENGTH} characters"
    if not isinstance(s.cron, str) or not croniter.is_valid(s.cron):
        yield f"cron {s.cron!r} is not a valid cron expression"
    if not isinstance(s.func, str) or "." not in s.func:
        yield "func must be a dotted path to a job function"
    if not isinstance(s.queue, str) or s.queue not in getattr(settings, "RQ_QUEUES", {}):
        yield f"queue {s.queue!r} is not in RQ_QUEUES"
    if type(s.timeout) is not int or not 0 < s.timeout <= MAX_TIMEOUT:
        yield f"timeout must be a whole number of seconds between 1 and {MAX_TIMEOUT}"
