"""When an active user counts as inactive: `last_activity_at <= now − threshold`.

The threshold is in days of 24 hours: `PULSE_INACTIVITY_DAYS` (14), or — when
LOOPS_ENABLED is on and `PULSE_CALIBRATION_LOOKUP` names a lookup — the
calibrated `inactivity-threshold-days` of the user's primary tenant, falling
back to the setting for tenants without one. It is one SQL condition on
`LifecycleState` rows (the per-tenant value joined by correlated subqueries),
never a per-user computation in Python.

`PULSE_CALIBRATION_LOOKUP` is a dotted path to `lookup(key)` returning a
queryset with `tenant_id` and a numeric `days` per tenant, or None when there
is nothing to read (the contract: extension_points.CalibrationLookup). The
default, `calibration_table`, reads `engagement.Calibration(tenant, key, value)`
— the tuning issue's model — and answers None while that model does not exist.
"""

from datetime import datetime, timedelta

from django.apps import apps
from django.conf import settings
from django.db.models import DateTimeField, F, FloatField, Func, OuterRef, Q, Subquery, Value
from django.db.models.functions import Cast, Coalesce, Least
from django.utils.module_loading import import_string

from ..models import EndUser

KEY = "inactivity-threshold-days"
SECONDS_PER_DAY = 86_400


def default_days() -> float:
    return float(settings.PULSE_INACTIVITY_DAYS)


def calibration_table(key: str):
    """The tuning issue's calibrations for `key`, or None before that model exists."""
    try:
        model = apps.get_model("engagement", "Calibration")
    except LookupError:
        return None
    return model.objects.filter(key=key).annotate(days=Cast(F("value"), FloatField()))


def calibrated(key: str = KEY):
    """The lookup's queryset for `key` when the loops use calibrations; otherwise None."""
    path = getattr(settings, "PULSE_CALIBRATION_LOOKUP", None)
    if not settings.LOOPS_ENABLED or not path:
        return None
    return import_string(path)(key)


def inactive_filter(now: datetime) -> Q:
    """`LifecycleState` rows whose last activity is at or before their threshold (inclusive)."""
    default = default_days()
    table = calibrated()
    if table is None:
        return Q(last_activity_at__lte=now - timedelta(days=default))
    tenant = EndUser.objects.filter(pk=OuterRef(OuterRef("user_id"))).values("primary_tenant_id")[:1]
    days = table.filter(tenant_id=Subquery(tenant), days__gt=0).values("days")[:1]
    threshold = Coalesce(Subquery(days, output_field=FloatField()), Value(default))
    # Implied by the per-tenant rule (no threshold is shorter than the shortest), and cheap:
    # an uncorrelated subquery the database computes once per statement, so it rules out
    # the recently active before the per-row lookups run.
    shortest = table.filter(days__gt=0).order_by("days").values("days")[:1]
    floor = Least(Value(default), Coalesce(Subquery(shortest, output_field=FloatField()), Value(default)))
    return Q(last_activity_at__lte=DaysBefore(now, floor)) & Q(
        last_activity_at__lte=DaysBefore(now, threshold))


class DaysBefore(Func):
    """`moment − days × 24 h` in SQL, exact to the microsecond on both databases."""

    output_field = DateTimeField()

    def __init__(self, moment: datetime, days):
        super().__init__(Value(moment, output_field=DateTimeField()), days)

    def as_sql(self, compiler, connection, **extra):
        moment, days = self.get_source_expressions()
        moment_sql, moment_params = compiler.compile(moment)
        days_sql, days_params = compiler.compile(days)
        if connection.vendor == "postgresql":
            sql = f"({moment_sql} - ({days_sql}) * INTERVAL '{SECONDS_PER_DAY} seconds')"
        elif connection.vendor == "sqlite":
            # Django's own SQLite function for datetime arithmetic (microseconds as an integer).
            sql = (f"django_format_dtdelta('-', {moment_sql}, "
                   f"CAST(({days_sql}) * {SECONDS_PER_DAY * 1_000_000} AS INTEGER))")
        else:
            raise NotImplementedError(f"per-tenant thresholds on {connection.vendor}")
        return sql, (*moment_params, *days_params)
