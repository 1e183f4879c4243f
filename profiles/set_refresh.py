"""The set-based rebuild: each feature group with an SQL form computed in SQL, for a range
of users at a time, without bringing any answer to Python.

For each keyset range of user ids (`range_size` users):

1. snapshot: the range's stored pairs (`generation`, `computed_at`) are copied into a
   temporary table BEFORE any data is read. A generation read no later than the data is
   what makes the conditional write safe: an invalidation that lands after this copy moves
   the generation and the write is refused, even if the data read afterwards already held
   its signal (a refusal costs a recompute at the next read, never a stale value);
2. shared: every shared relation the groups read (registry.shared_sql, e.g. the one
   pass over the window for tips and activity) is computed once into a temporary
   table of its name;
3. stage: for every group with SQL, one `INSERT INTO <stage> SELECT … GROUP BY …` computes
   its rows for the range's users into a temporary table, with each pair's snapshot
   generation and whether it was stored (stale-only keeps the pairs missing or expired at
   `now`);
4. write: the staged rows go into ProfileFeatureValue in short transactions of
   `batch_size` users. Pairs that were stored go through the conditional write of
   profiles/store.py: `ON CONFLICT … DO UPDATE … WHERE generation = <the staged
   generation>`; an invalidation that landed after the snapshot moved the generation, so
   the older value is refused (counted in `refused`) and the next read recomputes it.
   Pairs never stored are a plain INSERT (see write_staged), refused the same way.

On PostgreSQL the shared and staging statements get their own `work_mem`
(PULSE_PROFILE_REBUILD_WORK_MEM, default 256MB, for that transaction only): the
aggregates of 100,000 users' window would otherwise spill to disk at the server's
default 4MB.

Staging first and writing after keeps the long statements read-only: the drain's
invalidations never wait behind them, only behind a short write transaction. A group
without SQL is computed by the Python path (refresh_chunk) for the same users.
"""

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime

from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction

from engagement.models import EndUser

from . import refresh
from .models import ProfileFeatureValue
from .refresh import ChunkResult
from .registry import Feature, FeatureGroup, SharedRelation
from .set_sql import USERS, cutoffs, literal, timestamp

log = logging.getLogger("pulse.profiles")
DEFAULT_RANGE = 100_000
DEFAULT_WORK_MEM = "256MB"
DEFAULT_TEMP_BUFFERS = "256MB"
STAGE = "profile_refresh_stage"
SEEN = "profile_refresh_seen"


def rebuild_set_based(
    users_queryset, now: datetime, features: Sequence[Feature], *, stale_only: bool = False,
    range_size: int = DEFAULT_RANGE, batch_size: int = refresh.DEFAULT_BATCH,
    progress: Callable[[ChunkResult], None] | None = None,
) -> ChunkResult:
    by_group: dict[FeatureGroup, list[Feature]] = defaultdict(list)
    for feature in features:
        by_group[feature.group].append(feature)
    in_sql = {group: chosen for group, chosen in by_group.items() if group.sql is not None}
    in_python = [f for group, chosen in by_group.items() if group.sql is None for f in chosen]
    shared = list({relation.name: relation for group in in_sql for relation in group.reads}.values())
    total = ChunkResult()
    _set_temp_buffers()
    with _stage_table(shared):
        for ids in refresh.user_id_chunks(users_queryset, range_size):
            users = users_queryset.filter(pk__gte=ids[0], pk__lte=ids[-1])
            _empty_stage()
            staged = ChunkResult()
            snapshot_stored(users, [f.name for chosen in in_sql.values() for f in chosen])
            ready = {relation.name for relation in shared if stage_shared(relation, users, now, staged)}
            for group, chosen in in_sql.items():
                if all(relation.name in ready for relation in group.reads):
                    staged.computed += stage_group(group, chosen, users, now, stale_only, staged)
                else:
                    staged.failed_groups.append(group.name)
            total.computed += staged.computed
            _analyze_stage()
            total.failed_groups.extend(g for g in staged.failed_groups if g not in total.failed_groups)
            for chunk in _chunks(ids, batch_size):
                done = ChunkResult(users=len(chunk), written=write_staged(chunk[0], chunk[-1], now))
                if in_python:
                    done.add(refresh.refresh_chunk(chunk, in_python, now, force=not stale_only))
                total.add(done)
                if progress:
                    progress(done)
    total.refused = total.computed - total.written
    return total


def stage_group(group: FeatureGroup, chosen: Sequence[Feature], users, now: datetime, stale_only: bool,
                result: ChunkResult) -> int:
    """Stage the group's rows for `users` (an EndUser queryset): one statement.
    A group that fails is logged and reported; its pairs keep what they have."""
    users_sql, users_params = users.values("pk", "timezone").query.sql_with_params()
    group_sql, group_params = group.sql(users.values("pk"), now)
    cutoff_rows, cutoff_params = cutoffs((f.name, now - f.ttl) for f in chosen)
    expired = "(p.computed_at IS NULL OR p.computed_at <= f.cutoff)" if stale_only else "true"
    sql = (
        # The WITH inside the INSERT: sqlite3 reports no rowcount for a statement that starts with WITH.
        f"INSERT INTO {STAGE} (user_id, name, value, value_text, generation, existed) "
        f"WITH {USERS} (id, timezone) AS ({users_sql}) "
        f"SELECT c.user_id, c.name, c.value, c.value_text, COALESCE(p.generation, 0), "
        f"p.user_id IS NOT NULL "
        f"FROM ({group_sql}) AS c JOIN ({cutoff_rows}) AS f ON f.name = c.name "
        f"LEFT JOIN {SEEN} AS p ON p.user_id = c.user_id AND p.name = c.name "
        f"WHERE {expired}"
    )
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            _set_work_mem(cursor)
            cursor.execute(sql, [*users_params, *group_params, *cutoff_params])
            return cursor.rowcount
    except Exception as exc:  # noqa: BLE001 - one broken group must not stop the others
        log.exception("event=profile_group_failed group=%s path=sql error_type=%s", group.name,
                      type(exc).__name__)
        result.failed_groups.append(group.name)
        return 0


def snapshot_stored(users, names: Sequence[str]) -> None:
    """Copy the range's stored pairs into the snapshot table, before any data is read (see above)."""
    table = connection.ops.quote_name(ProfileFeatureValue._meta.db_table)
    users_sql, users_params = users.values("pk").query.sql_with_params()
    names_sql = ", ".join(literal(name) for name in names) or "NULL"
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {SEEN} (user_id, name, computed_at, generation) "
                       f"SELECT user_id, name, computed_at, generation FROM {table} "
                       f"WHERE user_id IN ({users_sql}) AND name IN ({names_sql})", users_params)
        cursor.execute(f"ANALYZE {SEEN}")


def stage_shared(relation: SharedRelation, users, now: datetime, result: ChunkResult) -> bool:
    """Compute a shared relation for `users` into a temporary table of its name: one statement.
    A failure is logged and answered False (the groups reading it are reported failed)."""
    try:
        sql, params = relation.sql(users.values("pk"), now)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {relation.name}")
            _set_work_mem(cursor)
            cursor.execute(f"CREATE TEMPORARY TABLE {relation.name} AS {sql}", params)
            cursor.execute(f"ANALYZE {relation.name}")
        return True
    except Exception as exc:  # noqa: BLE001 - reported through the groups that read it
        log.exception("event=profile_shared_failed relation=%s error_type=%s", relation.name,
                      type(exc).__name__)
        return False


def _set_temp_buffers() -> None:
    """On PostgreSQL, room in memory for the temporary tables (PULSE_PROFILE_REBUILD_TEMP_BUFFERS,
    default 256MB): at the default 8MB a range's stage (1.1 million rows and their index for
    100,000 users) goes through files. PostgreSQL refuses the change once the session has used a
    temporary table (a later rebuild on the connection keeps what it has), and a backend keeps
    the buffers it filled until its connection closes."""
    if connection.vendor != "postgresql":
        return
    size = str(getattr(settings, "PULSE_PROFILE_REBUILD_TEMP_BUFFERS", DEFAULT_TEMP_BUFFERS))
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT set_config('temp_buffers', %s, false)", [size])
    except DatabaseError:
        log.info("event=profile_temp_buffers_kept")


def _set_work_mem(cursor) -> None:
    if connection.vendor == "postgresql":
        cursor.execute("SELECT set_config('work_mem', %s, true)", [work_mem()])


def work_mem() -> str:
    return str(getattr(settings, "PULSE_PROFILE_REBUILD_WORK_MEM", DEFAULT_WORK_MEM))


def write_staged(first_id: int, last_id: int, now: datetime) -> int:
    """Write the staged rows of users first_id..last_id where the generation is still the
    staged one, in one short transaction; answer how many were written.

    Pairs that had no stored row at the snapshot (a first build, new users, new features)
    are written with a plain INSERT: no conditional update to try, no row to lock. If a row
    appeared since (an invalidation's marker, another writer), the INSERT fails on the unique
    constraint and those pairs go through the conditional write like the others, which
    refuses the ones whose generation moved."""
    with transaction.atomic():
        written = 0
        try:
            with transaction.atomic():  # a savepoint: the failed INSERT leaves nothing behind
                written = _write(first_id, last_id, now, existed=False, conditional=False)
        except IntegrityError:
            written = _write(first_id, last_id, now, existed=False, conditional=True)
        return written + _write(first_id, last_id, now, existed=True, conditional=True)


def _write(first_id: int, last_id: int, now: datetime, *, existed: bool, conditional: bool) -> int:
    qn = connection.ops.quote_name
    table = qn(ProfileFeatureValue._meta.db_table)
    at, at_param = timestamp(now)
    # Only users still live now: one erased or merged after the stage was computed has had its
    # values deleted by the erase or merge handler, and must not get them back from the stage.
    live = (f"EXISTS (SELECT 1 FROM {qn(EndUser._meta.db_table)} u WHERE u.id = {STAGE}.user_id "
            f"AND u.deleted_at IS NULL AND u.merged_into_id IS NULL)")
    sql = (
        f"INSERT INTO {table} (user_id, name, value, value_text, computed_at, generation) "
        f"SELECT user_id, name, value, value_text, {at}, generation FROM {STAGE} "
        f"WHERE user_id >= %s AND user_id <= %s AND existed = %s AND {live} "
        f"ORDER BY user_id, name"  # one lock order for every writer
    )
    if conditional:
        sql += (f" ON CONFLICT (user_id, name) DO UPDATE SET value = EXCLUDED.value, "
                f"value_text = EXCLUDED.value_text, computed_at = EXCLUDED.computed_at "
                f"WHERE {table}.generation = EXCLUDED.generation")
    with connection.cursor() as cursor:
        cursor.execute(sql, [at_param, first_id, last_id, existed])
        return cursor.rowcount


def answers_in_sql(group: FeatureGroup, user_ids: Sequence[int], now: datetime) -> list[tuple]:
    """The rows (user_id, name, value, value_text) the group's SQL answers for these users,
    read back instead of written: how tests hold the SQL form to the Python compute."""
    users = EndUser.objects.filter(pk__in=list(user_ids))
    users_sql, users_params = users.values("pk", "timezone").query.sql_with_params()
    ctes, params = [f"{USERS} (id, timezone) AS ({users_sql})"], [*users_params]
    for relation in group.reads:  # a shared relation as a CTE of its name
        shared_sql, shared_params = relation.sql(users.values("pk"), now)
        ctes.append(f"{relation.name} AS ({shared_sql})")
        params.extend(shared_params)
    group_sql, group_params = group.sql(users.values("pk"), now)
    sql = f"WITH {', '.join(ctes)} SELECT c.user_id, c.name, c.value, c.value_text FROM ({group_sql}) AS c"
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *group_params])
        return cursor.fetchall()


class _stage_table:
    """The temporary stage and snapshot tables for the duration of a rebuild (this connection
    only), and the shared relations' tables when it ends."""

    def __init__(self, shared: Sequence[SharedRelation] = ()):
        self.shared = shared

    def __enter__(self):
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {STAGE}")
            cursor.execute(f"CREATE TEMPORARY TABLE {STAGE} (user_id bigint NOT NULL, "
                           f"name varchar(200) NOT NULL, value double precision, value_text varchar(500), "
                           f"generation bigint NOT NULL, existed boolean NOT NULL)")
            cursor.execute(f"CREATE INDEX {STAGE}_user ON {STAGE} (user_id)")
            cursor.execute(f"DROP TABLE IF EXISTS {SEEN}")
            cursor.execute(f"CREATE TEMPORARY TABLE {SEEN} (user_id bigint NOT NULL, "
                           f"name varchar(200) NOT NULL, computed_at {_timestamp_type()}, "
                           f"generation bigint NOT NULL)")
        return self

    def __exit__(self, exc_type, *exc):
        try:
            with connection.cursor() as cursor:
                for name in (STAGE, SEEN, *(relation.name for relation in self.shared)):
                    cursor.execute(f"DROP TABLE IF EXISTS {name}")
        except DatabaseError:
            if exc_type is None:
                raise
            # The transaction is broken by the error being raised: the table goes with the session.
        return False


def _empty_stage() -> None:
    with connection.cursor() as cursor:
        for name in (STAGE, SEEN):
            cursor.execute(f"TRUNCATE {name}" if connection.vendor == "postgresql" else f"DELETE FROM {name}")


def _timestamp_type() -> str:
    """computed_at's column type as the values table has it (text on SQLite)."""
    return "timestamp with time zone" if connection.vendor == "postgresql" else "datetime"


def _analyze_stage() -> None:
    """Fresh statistics, so each write chunk reads its users through the stage's index."""
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {STAGE}")


def _chunks(ids: list[int], size: int):
    for start in range(0, len(ids), size):
        yield ids[start:start + size]
