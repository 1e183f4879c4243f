"""The set-based rebuild: each feature group with an SQL form computed in SQL, for a range
of users at a time, without bringing any answer to Python.

For each keyset range of user ids (`range_size` users):

1. stage: for every group with SQL, one `INSERT INTO <stage> SELECT … GROUP BY …` computes
   its rows for the range's users into a temporary table, together with each pair's
   `generation` as stored — read by the same statement, so from the same snapshot as
   the signals (stale-only keeps the pairs missing or expired at `now`);
2. write: the staged rows go into ProfileFeatureValue in short transactions of
   `batch_size` users, with the conditional write of profiles/store.py: `ON CONFLICT …
   DO UPDATE … WHERE generation = <the staged generation>`. An invalidation that landed
   after the snapshot moved the generation, so the older value is refused (counted in
   `refused`); the next read recomputes it.

On PostgreSQL the staging statement gets its own `work_mem`
(PULSE_PROFILE_REBUILD_WORK_MEM, default 256MB, for that transaction only): its
aggregates group millions of (user, hour) and (user, day) rows, and with the
server's default 4MB every hash aggregate spills to disk.

Staging first and writing after keeps the one long statement read-only: the drain's
invalidations never wait behind it, only behind a short write transaction. A group
without SQL is computed by the Python path (refresh_chunk) for the same users.
"""

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime

from django.conf import settings
from django.db import DatabaseError, connection, transaction

from engagement.models import EndUser

from . import refresh
from .models import ProfileFeatureValue
from .refresh import ChunkResult
from .registry import Feature, FeatureGroup
from .set_sql import USERS, cutoffs, timestamp

log = logging.getLogger("pulse.profiles")
DEFAULT_RANGE = 100_000
DEFAULT_WORK_MEM = "256MB"
STAGE = "profile_refresh_stage"


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
    total = ChunkResult()
    with _stage_table():
        for ids in refresh.user_id_chunks(users_queryset, range_size):
            users = users_queryset.filter(pk__gte=ids[0], pk__lte=ids[-1])
            _empty_stage()
            staged = ChunkResult()
            for group, chosen in in_sql.items():
                staged.computed += stage_group(group, chosen, users, now, stale_only, staged)
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
    table = connection.ops.quote_name(ProfileFeatureValue._meta.db_table)
    sql = (
        # The WITH inside the INSERT: sqlite3 reports no rowcount for a statement that starts with WITH.
        f"INSERT INTO {STAGE} (user_id, name, value, value_text, generation) "
        f"WITH {USERS} (id, timezone) AS ({users_sql}) "
        f"SELECT c.user_id, c.name, c.value, c.value_text, COALESCE(p.generation, 0) "
        f"FROM ({group_sql}) AS c JOIN ({cutoff_rows}) AS f ON f.name = c.name "
        f"LEFT JOIN {table} AS p ON p.user_id = c.user_id AND p.name = c.name "
        f"WHERE {expired}"
    )
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("SELECT set_config('work_mem', %s, true)", [work_mem()])
            cursor.execute(sql, [*users_params, *group_params, *cutoff_params])
            return cursor.rowcount
    except Exception as exc:  # noqa: BLE001 - one broken group must not stop the others
        log.exception("event=profile_group_failed group=%s path=sql error_type=%s", group.name,
                      type(exc).__name__)
        result.failed_groups.append(group.name)
        return 0


def work_mem() -> str:
    return str(getattr(settings, "PULSE_PROFILE_REBUILD_WORK_MEM", DEFAULT_WORK_MEM))


def write_staged(first_id: int, last_id: int, now: datetime) -> int:
    """Write the staged rows of users first_id..last_id where the generation is still the
    staged one, in one short transaction; answer how many were written."""
    table = connection.ops.quote_name(ProfileFeatureValue._meta.db_table)
    at, at_param = timestamp(now)
    sql = (
        f"INSERT INTO {table} (user_id, name, value, value_text, computed_at, generation) "
        f"SELECT user_id, name, value, value_text, {at}, generation FROM {STAGE} "
        f"WHERE user_id >= %s AND user_id <= %s ORDER BY user_id, name "  # one lock order for every writer
        f"ON CONFLICT (user_id, name) DO UPDATE SET value = EXCLUDED.value, "
        f"value_text = EXCLUDED.value_text, computed_at = EXCLUDED.computed_at "
        f"WHERE {table}.generation = EXCLUDED.generation"
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, [at_param, first_id, last_id])
        return cursor.rowcount


def answers_in_sql(group: FeatureGroup, user_ids: Sequence[int], now: datetime) -> list[tuple]:
    """The rows (user_id, name, value, value_text) the group's SQL answers for these users,
    read back instead of written: how tests hold the SQL form to the Python compute."""
    users = EndUser.objects.filter(pk__in=list(user_ids))
    users_sql, users_params = users.values("pk", "timezone").query.sql_with_params()
    group_sql, group_params = group.sql(users.values("pk"), now)
    sql = (f"WITH {USERS} (id, timezone) AS ({users_sql}) "
           f"SELECT c.user_id, c.name, c.value, c.value_text FROM ({group_sql}) AS c")
    with connection.cursor() as cursor:
        cursor.execute(sql, [*users_params, *group_params])
        return cursor.fetchall()


class _stage_table:
    """The temporary stage table for the duration of a rebuild (this connection only)."""

    def __enter__(self):
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {STAGE}")
            cursor.execute(f"CREATE TEMPORARY TABLE {STAGE} (user_id bigint NOT NULL, "
                           f"name varchar(200) NOT NULL, value double precision, value_text varchar(500), "
                           f"generation bigint NOT NULL)")
            cursor.execute(f"CREATE INDEX {STAGE}_user ON {STAGE} (user_id)")
        return self

    def __exit__(self, exc_type, *exc):
        try:
            with connection.cursor() as cursor:
                cursor.execute(f"DROP TABLE IF EXISTS {STAGE}")
        except DatabaseError:
            if exc_type is None:
                raise
            # The transaction is broken by the error being raised: the table goes with the session.
        return False


def _empty_stage() -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {STAGE}" if connection.vendor == "postgresql" else f"DELETE FROM {STAGE}")


def _analyze_stage() -> None:
    """Fresh statistics, so each write chunk reads its users through the stage's index."""
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {STAGE}")


def _chunks(ids: list[int], size: int):
    for start in range(0, len(ids), size):
        yield ids[start:start + size]
