"""The core's entries in PULSE_SIGNAL_HANDLERS."""

from django.db import connection

from .activity import is_activity
from .models import EndUser


def record_last_seen(signals, context) -> None:
    """Keep `last_seen_at` (never backwards) and `first_seen_at` (never forwards).

    Only user activity moves them (`activity.is_activity`): Pulse's own
    bookkeeping (`$identify`, `$lifecycle.changed` …) is not the user showing
    up. History counts too: an imported visit is still a visit. One UPDATE per
    batch whatever its size, touching only users whose times move.
    """
    latest: dict[int, object] = {}
    earliest: dict[int, object] = {}
    for signal in signals:
        if not is_activity(signal):
            continue
        uid, at = signal.user_id, signal.occurred_at
        if uid not in latest or at > latest[uid]:
            latest[uid] = at
        if uid not in earliest or at < earliest[uid]:
            earliest[uid] = at
    if latest:
        _update_seen_times([(uid, latest[uid], earliest[uid]) for uid in sorted(latest)])


def _update_seen_times(rows: list[tuple[int, object, object]]) -> None:
    table = connection.ops.quote_name(EndUser._meta.db_table)
    adapt = connection.ops.adapt_datetimefield_value
    if connection.vendor == "postgresql":
        source = (
            "SELECT * FROM unnest(%s::bigint[], %s::timestamptz[], %s::timestamptz[])"
            " AS v(id, latest, earliest)"
        )
        params = [[r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]]
    else:
        values = ", ".join(["(%s, %s, %s)"] * len(rows))
        source = f"SELECT column1 AS id, column2 AS latest, column3 AS earliest FROM (VALUES {values})"
        params = [value for uid, late, early in rows for value in (uid, adapt(late), adapt(early))]
    sql = f"""
        UPDATE {table} SET
            last_seen_at = CASE WHEN {table}.last_seen_at IS NULL OR {table}.last_seen_at < v.latest
                                THEN v.latest ELSE {table}.last_seen_at END,
            first_seen_at = CASE WHEN v.earliest < {table}.first_seen_at
                                 THEN v.earliest ELSE {table}.first_seen_at END
        FROM ({source}) AS v
        WHERE {table}.id = v.id
          AND ({table}.last_seen_at IS NULL OR {table}.last_seen_at < v.latest
               OR v.earliest < {table}.first_seen_at)
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
