"""The one generated benchmark dataset, kept as a PostgreSQL template database (docs/ARCHITECTURE.md §4).

`build_template` creates `pulse_bench_template`: the schema from the migrations,
then tenants, end users and memberships inserted set-based from
`generate_series` (no Python loop over users), and one API key with every
scope made through `engagement.keys.create_api_key` so the benchmark knows the
raw key. `fresh_copy` clones it with `CREATE DATABASE … TEMPLATE`, so every
measurement starts from the same state in seconds.

User n (1-based) has external id `user-<n>`, email `user-<n>@bench.example`
and belongs to tenant `tenant-<1 + n % tenants>` (its primary tenant); every
tenth user also belongs to the next tenant. Timestamps are spread
deterministically over the year before the build.

The Django side (migrate, inserts, key) runs in `bench.tasks`, a child
process, because Django reads DATABASE_URL once at start-up.
"""

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = "pulse_bench_template"
PREFIX = "pulse_bench"


@dataclass(frozen=True)
class Scale:
    users: int
    tenants: int


def external_id(n: int) -> str:
    return f"user-{n}"


def tenant_key(n: int, tenants: int) -> str:
    """The primary tenant of user n."""
    return f"tenant-{1 + n % tenants}"


def database_url(server_url: str, name: str) -> str:
    """`server_url` with its database name replaced by `name`."""
    parts = urlsplit(server_url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def admin_connection(server_url: str) -> psycopg.Connection:
    """An autocommit connection to the maintenance database, for CREATE/DROP DATABASE."""
    return psycopg.connect(database_url(server_url, "postgres"), autocommit=True)


def drop_database(admin: psycopg.Connection, name: str) -> None:
    if not name.startswith(PREFIX):
        raise ValueError(f"refusing to drop {name!r}: benchmarks only drop {PREFIX}_* databases")
    admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def fresh_copy(admin: psycopg.Connection, name: str) -> None:
    """(Re)create `name` as a copy of the template."""
    drop_database(admin, name)
    admin.execute(
        sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(TEMPLATE))
    )


def build_template(server_url: str, scale: Scale, env: dict[str, str]) -> str:
    """Create the template database at `scale`; return the raw API key stored in it."""
    with admin_connection(server_url) as admin:
        drop_database(admin, TEMPLATE)
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(TEMPLATE)))
    child_env = {**env, "DATABASE_URL": database_url(server_url, TEMPLATE)}
    out = run_task(["build-dataset", "--users", str(scale.users), "--tenants", str(scale.tenants)],
                   child_env)
    with psycopg.connect(database_url(server_url, TEMPLATE), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")  # copies inherit the statistics and the visibility map
    return out["api_key"]


def run_task(args: list[str], env: dict[str, str]) -> dict:
    """Run `python -m bench.tasks ARGS` with Django configured by `env`; return its JSON line."""
    proc = subprocess.run(  # stderr (progress, warnings) goes straight to ours
        [sys.executable, "-m", "bench.tasks", *args],
        cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.PIPE, text=True, check=False,
    )
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout)
        raise RuntimeError(f"bench.tasks {args[0]} failed with exit code {proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --- the SQL, run by bench.tasks inside Django's connection ----------------

POPULATE_SQL = [
    """
    INSERT INTO {tenant} (key, name, traits, created_at)
    SELECT 'tenant-' || g, 'Tenant ' || g,
           jsonb_build_object('plan', (ARRAY['free', 'team', 'business'])[1 + mod(g, 3)]),
           %(ref)s::timestamptz - interval '400 days'
    FROM generate_series(1, %(tenants)s) AS g
    """,
    """
    INSERT INTO {user} (external_id, anonymous_id, email, properties, timezone, locale,
                        reengagement_opt_out, first_seen_at, last_seen_at, deleted_at,
                        merged_into_id, primary_tenant_id)
    SELECT 'user-' || g, NULL, 'user-' || g || '@bench.example',
           jsonb_build_object('plan', (ARRAY['free', 'pro', 'enterprise'])[1 + mod(g, 3)],
                              'cohort', mod(g, 12)),
           (ARRAY['UTC', 'Europe/Paris', 'America/New_York', 'Asia/Tokyo'])[1 + mod(g, 4)], 'en',
           mod(g, 50) = 0,
           %(ref)s::timestamptz - (mod(g * 7, 60) + mod(g * 13, 300) + 1) * interval '1 day',
           %(ref)s::timestamptz - mod(g * 7, 60) * interval '1 day' - mod(g, 1440) * interval '1 minute',
           NULL, NULL, NULL
    FROM generate_series(1, %(users)s) AS g
    """,
    # Every user in its primary tenant, every tenth one in the next tenant too (joined later).
    """
    INSERT INTO {membership} (user_id, tenant_id, role, joined_at)
    SELECT u.id, t.id, CASE WHEN mod(u.n, 25) = 0 THEN 'admin' ELSE 'member' END, u.first_seen_at
    FROM (SELECT id, first_seen_at, substr(external_id, 6)::int AS n FROM {user}) AS u
    JOIN {tenant} AS t ON t.key = 'tenant-' || (1 + mod(u.n, %(tenants)s))
    """,
    """
    INSERT INTO {membership} (user_id, tenant_id, role, joined_at)
    SELECT u.id, t.id, 'member', u.first_seen_at + interval '1 day'
    FROM (SELECT id, first_seen_at, substr(external_id, 6)::int AS n FROM {user}) AS u
    JOIN {tenant} AS t ON t.key = 'tenant-' || (1 + mod(u.n + 1, %(tenants)s))
    WHERE mod(u.n, 10) = 0 AND %(tenants)s > 1
    """,
    """
    UPDATE {user} AS u SET primary_tenant_id = m.tenant_id
    FROM {membership} AS m
    WHERE m.user_id = u.id AND m.joined_at = u.first_seen_at
    """,
]
