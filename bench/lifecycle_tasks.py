"""The lifecycle benchmark's steps that need Django (run as children: `python -m bench.lifecycle_tasks`).

  states --due-share F --now T   give every user a lifecycle state, a share F of them past 14 days
  job --now T                    time run_daily_engagement(T) in this process
  ceiling --now T                time one raw UPDATE … RETURNING of the same users plus one
                                 INSERT … SELECT each of their messages, transitions and signals
"""

import argparse
import json
import os
import sys
import time
from datetime import datetime


def _setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def states(due_share: float, now: datetime) -> dict:
    from django.db import connection, transaction

    from engagement.models import EndUser, LifecycleState

    qn = connection.ops.quote_name
    per_mille = round(due_share * 1000)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"""
            INSERT INTO {qn(LifecycleState._meta.db_table)}
                (user_id, state, last_activity_at, changed_at)
            SELECT id, 'active',
                   %(now)s::timestamptz - CASE WHEN mod(id * 7919, 1000) < %(due)s
                       THEN interval '20 days' ELSE interval '3 days' END,
                   %(now)s::timestamptz - interval '30 days'
            FROM {qn(EndUser._meta.db_table)}
        """, {"now": now, "due": per_mille})
        rows = cursor.rowcount
    return {"states": rows}


def job(now: datetime) -> dict:
    from engagement.loops.daily_engagement import run_daily_engagement

    started, cpu = time.perf_counter(), time.process_time()
    if os.environ.get("PULSE_BENCH_PROFILE"):
        import cProfile
        import pstats

        profile = cProfile.Profile()
        result = profile.runcall(run_daily_engagement, now)
        pstats.Stats(profile, stream=sys.stderr).sort_stats("cumulative").print_stats(30)
    else:
        result = run_daily_engagement(now)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "cpu_seconds": time.process_time() - cpu, "processed": result.processed,
            "succeeded": result.succeeded, "failed": result.failed, "skipped": result.skipped,
            "errors": result.errors[:3]}


def _select(model, values: dict, exprs: dict) -> tuple[str, str, list]:
    """Columns and a SELECT list: constants as parameters, `exprs` as SQL over `moved`."""
    from django.db import connection

    columns, select, params = [], [], []
    for name, value in values.items():
        field = model._meta.get_field(name)
        columns.append(connection.ops.quote_name(field.column))
        if name in exprs:
            select.append(exprs[name])
        else:
            select.append(f"%s::{field.db_type(connection)}")
            params.append(field.get_db_prep_save(value, connection))
    return ", ".join(columns), ", ".join(select), params


def ceiling(now: datetime) -> dict:
    """The same users moved and the same rows written, by one hand-written statement."""
    from datetime import timedelta

    from django.db import connection, transaction

    from campaigns.models import Message
    from campaigns.outbox import MessageRow, _values, live_templates
    from engagement.ingest import SystemSignal, system_signal_row
    from engagement.models import EndUser, LifecycleState, LifecycleTransition, Signal, SignalQueue

    qn = connection.ops.quote_name
    template = live_templates(["engagement.goodbye.self_select"])["engagement.goodbye.self_select"]
    message = _values(MessageRow(0, template.key, {}, "k", "lifecycle"), template, now)
    message["content_hash"] = ""
    changed = {"from": "active", "to": "goodbye_sent", "trigger": "inactivity_14d"}
    signal = system_signal_row(SystemSignal(0, "$lifecycle.changed", "job:daily_engagement",
                                            properties=changed, tenant_id=None), now=now)
    transition = {"user_id": 0, "from_state": "active", "to_state": "goodbye_sent",
                  "trigger": "inactivity_14d", "at": now, "actor": "job:daily_engagement",
                  "job_run_id": None, "job_kind": "daily_engagement", "job_window": now, "signal_id": None}
    m_cols, m_sel, m_params = _select(Message, message, {
        "user_id": "moved.user_id",
        "idempotency_key": f"moved.user_id || ':goodbye_sent:{now.date().isoformat()}'"})
    s_cols, s_sel, s_params = _select(Signal, signal, {"user_id": "moved.user_id",
                                                       "tenant_id": "moved.tenant_id"})
    t_cols, t_sel, t_params = _select(LifecycleTransition, transition, {"user_id": "moved.user_id"})
    state, user = qn(LifecycleState._meta.db_table), qn(EndUser._meta.db_table)
    cutoff = now - timedelta(days=14)
    sql = f"""
        WITH moved AS (
            UPDATE {state} AS s SET state = 'goodbye_sent', changed_at = %s, goodbye_sent_at = %s,
                   goodbye_expires_at = %s
            FROM {user} AS u
            WHERE s.user_id = u.id AND s.state = 'active' AND s.last_activity_at <= %s
              AND NOT u.reengagement_opt_out
            RETURNING s.user_id, u.primary_tenant_id AS tenant_id
        ),
        t AS (INSERT INTO {qn(LifecycleTransition._meta.db_table)} ({t_cols}) SELECT {t_sel} FROM moved),
        m AS (INSERT INTO {qn(Message._meta.db_table)} ({m_cols}) SELECT {m_sel} FROM moved),
        s AS (INSERT INTO {qn(Signal._meta.db_table)} ({s_cols}) SELECT {s_sel} FROM moved RETURNING id)
        INSERT INTO {qn(SignalQueue._meta.db_table)} (signal_id) SELECT id FROM s
    """
    params = [now, now, now + timedelta(hours=48), cutoff, *t_params, *m_params, *s_params]
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        moved = cursor.rowcount
    return {"seconds": time.perf_counter() - started, "moved": moved}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.lifecycle_tasks")
    parser.add_argument("step", choices=["states", "job", "ceiling"])
    parser.add_argument("--now", required=True)
    parser.add_argument("--due-share", type=float, default=0.3)
    args = parser.parse_args(argv)
    _setup()
    now = datetime.fromisoformat(args.now)
    out = {"states": lambda: states(args.due_share, now), "job": lambda: job(now),
           "ceiling": lambda: ceiling(now)}[args.step]()
    sys.stdout.write(json.dumps(out, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
