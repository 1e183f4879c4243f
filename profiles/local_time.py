"""Per-row local time in the user's own time zone, on PostgreSQL and SQLite alike.

PostgreSQL converts with `AT TIME ZONE`, row by row. SQLite has no time zone
database, so every SQLite connection gets deterministic functions,
`pulse_local_hour(ts, tz)`, `pulse_local_date(ts, tz)` and
`pulse_local_hour_number(ts, tz)`, that convert with Python's zoneinfo
(registered on `connection_created`, see ProfilesConfig), and
`pulse_whole_days(earlier, later)`, which SQLite's own date functions
(millisecond precision) cannot answer exactly; plus `pulse_bit_or` (an
aggregate) and `pulse_bit_count`, which PostgreSQL has built in.
A user without a time zone ("") is UTC; so is a name the zone database does not
know, on SQLite (PostgreSQL would refuse it, but names are validated with
zoneinfo when they are written).
"""

import math
import re
from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db.models import CharField, FloatField, Func, IntegerField

# --- the SQLite side --------------------------------------------------------------

EPOCH = datetime(1970, 1, 1)


@lru_cache(maxsize=1024)
def zone(name: str | None):
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def _local(stored: str | None, tz: str | None) -> datetime | None:
    """A datetime as Django stores it on SQLite (naive UTC text), in the zone `tz`."""
    if stored is None:
        return None
    moment = datetime.fromisoformat(str(stored))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(zone(tz))


def local_hour(stored, tz) -> int | None:
    moment = _local(stored, tz)
    return None if moment is None else moment.hour


def local_date(stored, tz) -> str | None:
    moment = _local(stored, tz)
    return None if moment is None else moment.date().isoformat()


def local_hour_number(stored, tz) -> int | None:
    """Hours from 1970-01-01 00:00 to the moment's wall-clock time in `tz` (floor): the local
    hour of day and the local day both follow from it (see LocalHourNumber)."""
    moment = _local(stored, tz)
    if moment is None:
        return None
    return math.floor((moment.replace(tzinfo=None) - EPOCH).total_seconds() / 3600)


class BitOr:
    """`pulse_bit_or(x)`: the bitwise OR of the integers aggregated (NULLs skipped; NULL if none)."""

    def __init__(self):
        self.bits = None

    def step(self, value):
        if value is not None:
            self.bits = int(value) | (self.bits or 0)

    def finalize(self):
        return self.bits


def bit_count(value) -> int | None:
    return None if value is None else int(value).bit_count()


def whole_days(earlier, later) -> int | None:
    """floor((later − earlier) / 1 day), as Python computes it from two datetimes."""
    start, end = _local(earlier, None), _local(later, None)
    if start is None or end is None:
        return None
    return math.floor((end - start).total_seconds() / 86400)


def register_sqlite_functions(sender, connection, **kwargs) -> None:
    """`connection_created` receiver: the local-time functions on every SQLite connection."""
    if connection.vendor != "sqlite":
        return
    raw = connection.connection
    raw.create_function("pulse_local_hour", 2, local_hour, deterministic=True)
    raw.create_function("pulse_local_date", 2, local_date, deterministic=True)
    raw.create_function("pulse_whole_days", 2, whole_days, deterministic=True)
    raw.create_function("pulse_local_hour_number", 2, local_hour_number, deterministic=True)
    raw.create_function("pulse_bit_count", 1, bit_count, deterministic=True)
    raw.create_aggregate("pulse_bit_or", 1, BitOr)


# --- the expressions --------------------------------------------------------------

PG_ZONE = "COALESCE(NULLIF({tz}, ''), 'UTC')"


class _LocalTime(Func):
    """`fn(timestamp expression, time zone name expression)`."""

    arity = 2
    pg_template = ""

    def as_postgresql(self, compiler, connection, **extra):
        (ts_sql, ts_params), (tz_sql, tz_params) = (
            compiler.compile(expression) for expression in self.get_source_expressions()
        )
        local = f"({ts_sql} AT TIME ZONE {PG_ZONE.format(tz=tz_sql)})"
        return self.pg_template.format(local=local), (*ts_params, *tz_params)


class LocalHour(_LocalTime):
    """The hour of day (0–23) of a UTC timestamp in a time zone."""

    function = "pulse_local_hour"
    output_field = IntegerField()
    pg_template = "EXTRACT(HOUR FROM {local})::integer"


class LocalHourNumber(_LocalTime):
    """Whole hours from 1970-01-01 00:00 to the wall-clock time of a UTC timestamp in a time
    zone: one conversion per row from which the local hour of day (`mod 24`) and the local day
    (`div 24`) both follow, so a query needing both converts each row once."""

    function = "pulse_local_hour_number"
    output_field = IntegerField()
    pg_template = "FLOOR(DATE_PART('epoch', {local}) / 3600)::bigint"


class LocalDate(_LocalTime):
    """The calendar day ('YYYY-MM-DD') of a UTC timestamp in a time zone."""

    function = "pulse_local_date"
    output_field = CharField()
    pg_template = "({local})::date::text"


KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


class JsonNumber(Func):
    """A JSON object's key as a float when it holds a JSON number, else NULL
    (a string "12", true or a nested object is not a number)."""

    output_field = FloatField()

    def __init__(self, column: str, key: str):
        if not KEY.match(key):
            raise ValueError(f"not a plain JSON key: {key!r}")
        self.key = key
        super().__init__(column)

    def as_postgresql(self, compiler, connection, **extra):
        sql, params = compiler.compile(self.get_source_expressions()[0])
        key = self.key
        return (f"CASE WHEN jsonb_typeof({sql} -> '{key}') = 'number' "
                f"THEN ({sql} ->> '{key}')::float8 END"), (*params, *params)

    def as_sqlite(self, compiler, connection, **extra):
        sql, params = compiler.compile(self.get_source_expressions()[0])
        path = f"'$.{self.key}'"
        return (f"CASE WHEN json_type({sql}, {path}) IN ('integer', 'real') "
                f"THEN json_extract({sql}, {path}) END"), (*params, *params)


