"""Evaluating buckets for some users: the one function real time and the clock's sweeps call.

`evaluate_many(tasks, now=)` takes any number of (bucket, users, cause) tasks
and asks, in ONE statement (each bucket's `matching_users` queryset as an
EXISTS, one SELECT per bucket joined by UNION ALL), which of each bucket's
users match at `now` and which are active members. Then, for all the buckets
at once, it joins the new matches in one INSERT, makes the members who no
longer match leave (reason `criteria`) in one UPDATE, and writes the
transitions and their signals in one INSERT each (`memberships.py`). The
statements per call are the same for one bucket or ten, five users or five
hundred.

Members who still match are marked evaluated under the current criteria,
but only when their mark is older than `CONFIRM_AFTER` or names other
criteria: rewriting every member's row on each signal was the largest write
of a steady load, and nothing reads the mark finer than that (the
re-evaluation after a criteria change looks at the fingerprint).
Properties are always the stored ones: the compiler reads
`EndUser.properties`, never a payload.
"""

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connection
from django.db.models import BigIntegerField, Exists, F, OuterRef, Subquery, Value
from django.db.models.expressions import RawSQL

from engagement.models import EndUser

from .candidates import BucketSpec, leaves
from .criteria import matching_users
from .memberships import ACTIVE, UNNEST, Cause, array_literal, confirm, id_set, join_rows, leave_rows, record
from .models import BucketMembership, LeaveReason

CONFIRM_AFTER = timedelta(minutes=1)


@dataclass
class Outcome:
    joined: list[dict] = field(default_factory=list)
    left: list[dict] = field(default_factory=list)

    @property
    def transitions(self) -> list[dict]:
        return self.joined + self.left


@dataclass(frozen=True)
class Task:
    """One bucket to evaluate for some users, and why."""

    spec: BucketSpec
    user_ids: frozenset[int]
    cause: Cause


def evaluate(spec: BucketSpec, user_ids: Collection[int], *, cause: Cause, now: datetime) -> Outcome:
    """One bucket: `evaluate_many` with one task."""
    return evaluate_many([Task(spec, frozenset(user_ids), cause)], now=now).get(spec.id, Outcome())


def evaluate_many(tasks: Sequence[Task], *, now: datetime) -> dict[int, Outcome]:
    """Evaluate every task (buckets with distinct ids); returns each bucket's transitions."""
    tasks = [task for task in tasks if task.user_ids and task.spec.criteria is not None]
    outcomes = {task.spec.id: Outcome() for task in tasks}
    if not tasks:
        return outcomes
    by_id = {task.spec.id: task for task in tasks}
    joins: dict[int, list[int]] = {}
    leaves: dict[int, list[int]] = {}
    stale: list[tuple[int, str]] = []
    for bucket_id, user_id, matches, membership_id, fresh in match_rows(tasks, now):
        if matches and membership_id is None:
            joins.setdefault(bucket_id, []).append(user_id)
        elif not matches and membership_id is not None:
            leaves.setdefault(bucket_id, []).append(membership_id)
        elif matches and not fresh:
            stale.append((membership_id, by_id[bucket_id].spec.fingerprint))
    confirm(stale, now=now)
    pending = join_rows([(by_id[b].spec, by_id[b].cause, ids) for b, ids in joins.items()], now=now)
    pending += leave_rows([(by_id[b].spec, by_id[b].cause, ids) for b, ids in leaves.items()],
                          reason=LeaveReason.CRITERIA, now=now)
    for row in record(pending, now=now):
        outcome = outcomes[row["bucket_id"]]
        (outcome.joined if row["kind"] == "entered" else outcome.left).append(row)
    return outcomes


def match_rows(tasks: Sequence[Task], now: datetime) -> list[tuple]:
    """(bucket id, user id, matches, active membership id or None, mark fresh) for every
    task's users: one UNION ALL statement of each bucket's SELECT."""
    parts = [_match_sql(task, now) for task in tasks]
    sql = " UNION ALL ".join(f"SELECT * FROM ({part}) AS m{i}" for i, (part, _) in enumerate(parts))
    with connection.cursor() as cursor:
        cursor.execute(sql, [param for _, params in parts for param in params])
        return cursor.fetchall()


@dataclass(frozen=True)
class _Compiled:
    sql: str
    params: tuple
    at: datetime


_compiled: dict[tuple, _Compiled] = {}
_AMONG = "among-ids-placeholder"
COMPILED_KEPT = 1000  # criteria versions kept per process


def _match_sql(task: Task, now: datetime) -> tuple[str, list]:
    """One bucket's SELECT and its parameters.

    Compiling criteria through the ORM cost more CPU than running the statement, on every
    batch. On PostgreSQL the compiled SQL of a bucket is kept per process (keyed by its
    criteria) and reused with new parameters: the users' array literal in place of a
    placeholder, and every datetime moved by the time elapsed since compiling (the compiler
    derives all of them from `now`: windows, `occurred_at <= now`, the confirm mark). Buckets
    reading profile features are compiled each time, since compiling refreshes those values."""
    spec = task.spec
    if connection.vendor != "postgresql" or any(kind == "profile" for kind, _ in leaves(spec.criteria)):
        sql, params = _match_select(spec, id_set(task.user_ids), now).query.sql_with_params()
        return sql, list(params)
    key = (spec.id, spec.fingerprint, json.dumps(spec.criteria, sort_keys=True))
    compiled = _compiled.get(key)
    if compiled is None:
        if len(_compiled) >= COMPILED_KEPT:
            _compiled.clear()
        sql, params = _match_select(spec, RawSQL(UNNEST, [_AMONG]), now).query.sql_with_params()
        compiled = _compiled[key] = _Compiled(sql, tuple(params), now)
    shift, among = now - compiled.at, array_literal(task.user_ids)
    return compiled.sql, [among if p is _AMONG else p + shift if isinstance(p, datetime) else p
                          for p in compiled.params]


def _match_select(spec: BucketSpec, among, now: datetime):
    matching = matching_users(spec.criteria, now, among=among).filter(pk=OuterRef("pk"))
    member = BucketMembership.objects.filter(bucket_id=spec.id, status=ACTIVE, user_id=OuterRef("pk"))
    fresh = member.filter(criteria_fingerprint=spec.fingerprint, last_evaluated_at__gt=now - CONFIRM_AFTER)
    return (EndUser.objects.filter(pk__in=among)  # erased and merged users too: they no longer match
            .annotate(bucket=Value(spec.id, output_field=BigIntegerField()), user=F("pk"),
                      matches=Exists(matching), membership=Subquery(member.values("pk")[:1]),
                      fresh=Exists(fresh))
            .values_list("bucket", "user", "matches", "membership", "fresh").order_by())
