"""The `user_activity` trigger, applied to a drain batch (a PULSE_SIGNAL_HANDLERS entry).

For the activity signals of the batch (`activity.is_activity`), per user and in
`occurred_at` order:

- a user without a state gets one, `active` from its first activity;
- `last_activity_at` becomes the latest of the stored and the new times;
- a user who is not active becomes active at the first activity that occurred
  after the state's `changed_at`: an imported visit from last month does not
  wake a user who went dormant last week.

History updates state too (state, not action); the `user_activity` trigger
queues no message anyway, and its `$lifecycle.changed` signals are history
unless the waking signal may act. A fixed number of statements per batch: one
insert-or-ignore, one conditional UPDATE per sleeping state, one for the
times, then the transition log; a second run over the same batch changes
nothing.
"""

from datetime import UTC, datetime

from django.db import connection
from django.utils.dateparse import parse_datetime

from ..activity import is_activity
from ..bulk import insert_returning
from ..models import LifecycleState
from .lifecycle import TRIGGERS, Cause, Change, record_changes

S = LifecycleState.State
TRIGGER = TRIGGERS["user_activity"]
DRAIN_ACTOR = "drain"


def record_lifecycle_activity(signals, context) -> None:
    acts = sorted(
        ((s.user_id, s.occurred_at, s.pk, s) for s in signals if is_activity(s)),
        key=lambda act: (act[0], act[1], act[2]),
    )
    if not acts:
        return
    first = {}
    for act in acts:
        first.setdefault(act[0], act)
    changes = _create(first, context)
    changes += _wake(acts, context)
    _move_last_activity(acts)
    record_changes(changes, trigger=TRIGGER, cause=Cause(DRAIN_ACTOR), now=context.now)


def _change(user_id, source, at, signal, context) -> Change:
    return Change(user_id, source, S.ACTIVE, at, signal_id=signal.pk, realtime=context.may_act(signal),
                  actor=signal.actor or DRAIN_ACTOR)


def _create(first: dict, context) -> list[Change]:
    rows = [
        {"user_id": uid, "state": S.ACTIVE, "last_activity_at": at, "changed_at": at,
         "goodbye_sent_at": None, "goodbye_expires_at": None, "help_expires_at": None, "remind_at": None}
        for uid, (_, at, _, _) in sorted(first.items())
    ]
    created = insert_returning(LifecycleState, rows, conflict_fields=["user"], returning=("user",))
    return [_change(r["user_id"], None, first[r["user_id"]][1], first[r["user_id"]][3], context)
            for r in created]


def _wake(acts, context) -> list[Change]:
    """One UPDATE per sleeping state: active from the first activity after `changed_at`."""
    cte, params = _acts_cte(acts)
    table = connection.ops.quote_name(LifecycleState._meta.db_table)
    after = f"a.user_id = {table}.user_id AND a.at > {table}.changed_at"
    by_user: dict[int, list] = {}
    for act in acts:
        by_user.setdefault(act[0], []).append(act)
    changes = []
    for source in (s for s in TRIGGER.moves if s is not None):
        sql = (
            f"{cte} UPDATE {table} SET state = %s, "
            f"changed_at = (SELECT MIN(a.at) FROM acts a WHERE {after}) "
            f"WHERE state = %s AND user_id IN (SELECT user_id FROM acts) "
            f"AND EXISTS (SELECT 1 FROM acts a WHERE {after}) RETURNING user_id, changed_at"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [*params, S.ACTIVE, source])
            woken = cursor.fetchall()
        for uid, at in woken:
            at = _aware(at)
            signal = next((a[3] for a in by_user[uid] if a[1] == at), by_user[uid][-1][3])
            changes.append(_change(uid, source, at, signal, context))
    return changes


def _move_last_activity(acts) -> None:
    cte, params = _acts_cte(acts)
    table = connection.ops.quote_name(LifecycleState._meta.db_table)
    latest = f"(SELECT MAX(a.at) FROM acts a WHERE a.user_id = {table}.user_id)"
    sql = (
        f"{cte} UPDATE {table} SET last_activity_at = {latest} "
        f"WHERE user_id IN (SELECT user_id FROM acts) AND last_activity_at < {latest}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _acts_cte(acts) -> tuple[str, list]:
    """`WITH acts(user_id, at) AS (…)`: the batch's activity as a table. PostgreSQL gets two
    arrays, SQLite a VALUES list (a drain batch stays far below its parameter limit)."""
    if connection.vendor == "postgresql":
        return (
            "WITH acts(user_id, at) AS (SELECT * FROM unnest(%s::bigint[], %s::timestamptz[]))",
            [[a[0] for a in acts], [a[1] for a in acts]],
        )
    adapt = connection.ops.adapt_datetimefield_value
    values = ", ".join(["(%s, %s)"] * len(acts))
    return (
        f"WITH acts(user_id, at) AS (VALUES {values})",
        [value for a in acts for value in (a[0], adapt(a[1]))],
    )


def _aware(value) -> datetime:
    """A returned timestamp: PostgreSQL gives a datetime, SQLite the stored text (UTC)."""
    if isinstance(value, str):
        value = parse_datetime(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)
