"""Calibrations: values a tuning job learned per tenant, read by the loops that consume them.

`get_calibration(tenant, key)` is the read side: the value, or None on a cold
start (nothing learned yet), which every consumer must treat as "use your
default". The write side, `write_calibrations`, is called by the tuning jobs
with every tenant's values at once: one set-based pass when nothing fails;
when something does, the tenants are split in halves until the failing one is
isolated (each part in its own savepoint), so it is recorded and the others
still update. Every change appends a `CalibrationHistory` row (old, new, actor,
job run and window); `rollback` undoes one change and records that too.
"""

import logging
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction

from ..bulk import insert_returning
from ..models import Calibration, CalibrationHistory, JobRun, Tenant

log = logging.getLogger("pulse.calibration")


@dataclass(frozen=True)
class Learned:
    """One value a job learned: `tenant_id`'s `key` is `value`, from `sample_size` observations."""

    tenant_id: int
    key: str
    value: float
    sample_size: int


@dataclass(frozen=True)
class Window:
    """What a job looked at: its kind and run, and the time range [start, end)."""

    kind: str
    start: datetime
    end: datetime
    days: int
    run: JobRun | None = None


def get_calibration(tenant: Tenant | int, key: str) -> float | None:
    tenant_id = tenant.pk if isinstance(tenant, Tenant) else tenant
    return Calibration.objects.filter(tenant_id=tenant_id, key=key).values_list("value", flat=True).first()


def write_calibrations(
    learned: list[Learned], window: Window, *, now: datetime
) -> tuple[set[int], dict[int, str]]:
    """Store the values; return (tenant ids written, {tenant id: error} for those that failed)."""
    by_tenant: dict[int, list[Learned]] = {}
    for value in sorted(learned, key=lambda v: (v.tenant_id, v.key)):
        by_tenant.setdefault(value.tenant_id, []).append(value)
    failed: dict[int, str] = {}
    _write_isolated(sorted(by_tenant), by_tenant, window, now, failed)
    return set(by_tenant) - set(failed), failed


def _write_isolated(tenant_ids, by_tenant, window, now, failed) -> None:
    try:
        with transaction.atomic():
            _write([v for t in tenant_ids for v in by_tenant[t]], window, now)
        return
    except Exception as exc:  # noqa: BLE001 - a failing tenant must not stop the others
        if len(tenant_ids) == 1:
            failed[tenant_ids[0]] = f"tenant #{tenant_ids[0]}: {type(exc).__name__}"
            log.warning(
                "event=calibration_failed kind=%s tenant_id=%d error_type=%s",
                window.kind, tenant_ids[0], type(exc).__name__,
            )
            return
    middle = len(tenant_ids) // 2
    _write_isolated(tenant_ids[:middle], by_tenant, window, now, failed)
    _write_isolated(tenant_ids[middle:], by_tenant, window, now, failed)


def _write(values: list[Learned], window: Window, now: datetime) -> None:
    """One read (locking the rows), one upsert, one history insert, whatever the tenant count."""
    if not values:
        return
    existing = {
        (c.tenant_id, c.key): c.value
        for c in Calibration.objects.select_for_update().filter(
            tenant_id__in={v.tenant_id for v in values}, key__in={v.key for v in values}
        ).order_by("tenant_id", "key")
    }
    run_id = window.run.pk if window.run is not None and window.run.pk else None
    insert_returning(
        Calibration,
        [
            {"tenant_id": v.tenant_id, "key": v.key, "value": v.value, "sample_size": v.sample_size,
             "window_days": window.days, "computed_at": now, "job_run_id": run_id}
            for v in values
        ],
        conflict_fields=["tenant", "key"],
        update_fields=["value", "sample_size", "window_days", "computed_at", "job_run"],
    )
    changes = [
        CalibrationHistory(
            tenant_id=v.tenant_id, key=v.key, old_value=existing.get((v.tenant_id, v.key)),
            new_value=v.value, sample_size=v.sample_size, job_kind=window.kind, job_run_id=run_id,
            window_start=window.start, window_end=window.end, actor=f"job:{window.kind}",
            changed_at=now,
        )
        for v in values
        if existing.get((v.tenant_id, v.key)) != v.value
    ]
    CalibrationHistory.objects.bulk_create(changes)


class NothingToRollBack(ValueError):
    pass


def rollback(change: CalibrationHistory, *, actor: str, now: datetime) -> CalibrationHistory:
    """Put the calibration back to the value it had before `change`; record it as a change.

    Undoing a creation removes the calibration (consumers see a cold start again)."""
    with transaction.atomic():
        current = (
            Calibration.objects.select_for_update().filter(tenant_id=change.tenant_id, key=change.key).first()
        )
        present = current.value if current is not None else None
        if present == change.old_value:
            raise NothingToRollBack("the calibration already has the value it had before this change")
        if change.old_value is None:
            current.delete()
        elif current is None:
            Calibration.objects.create(
                tenant_id=change.tenant_id, key=change.key, value=change.old_value,
                sample_size=0, window_days=0, computed_at=now,
            )
        else:
            current.value, current.computed_at = change.old_value, now
            current.save(update_fields=["value", "computed_at"])
        return CalibrationHistory.objects.create(
            tenant_id=change.tenant_id, key=change.key, old_value=present, new_value=change.old_value,
            sample_size=0, actor=actor, changed_at=now, rollback_of=change,
        )
