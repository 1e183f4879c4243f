"""The preview: how many users match criteria now, and a few of them, saving nothing."""

from django.db import connections, transaction
from django.db.models import Count, Window

from engagement.models import EndUser
from engagement.refs import canonical_ref

from .criteria import matching_users, validate_criteria

SAMPLE_SIZE = 20
IDENTIFIERS = ("external_id", "anonymous_id", "email")


class PreviewInvalid(ValueError):
    def __init__(self, errors: list[dict]):
        super().__init__("the criteria are invalid")
        self.errors = errors


def preview(criteria, *, now) -> dict:
    """{count, sample}: the sample is up to 20 canonical refs, lowest internal ids first."""
    errors = validate_criteria(criteria)
    if errors:
        raise PreviewInvalid(errors)
    picked = _first_matches(matching_users(criteria, now))
    users = EndUser.objects.only(*IDENTIFIERS).in_bulk([pk for pk, _ in picked])
    return {"count": picked[0][1] if picked else 0,
            "sample": [canonical_ref(users[pk]) for pk, _ in picked if pk in users]}


def _first_matches(users) -> list[tuple[int, int]]:
    """(id, total) of the lowest ids among `users`, with `COUNT(*) OVER ()` as the total.

    The criteria are evaluated once. The window runs in a subquery with no order of
    its own and the outer query keeps the first ids (a top-N sort): written as one
    `… ORDER BY id LIMIT 20`, PostgreSQL plans the whole evaluation for the LIMIT and
    walks the users in id order (an index scan and merge joins over every user), several
    times slower than the plan it picks for the count. Ids only, so the window's buffer
    stays small; the sampled users are then read by primary key.
    """
    matched = users.annotate(_total=Window(Count("pk"))).order_by().values_list("pk", "_total")
    sql, params = matched.query.sql_with_params()
    connection = connections[matched.db]
    with transaction.atomic(using=matched.db), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(WITHOUT_JIT)
        cursor.execute(f"SELECT * FROM ({sql}) AS matched ORDER BY 1 LIMIT %s", (*params, SAMPLE_SIZE))
        return cursor.fetchall()


# The preview answers while criteria are typed, so its latency is the point. PostgreSQL costs
# criteria over a million users far above `jit_above_cost` (the log fallbacks of tally leaves
# are costed per row), and compiling and optimizing the plan's expressions then took 0.1-0.5 s
# of a 1.5 s preview that JIT made no faster (EXPLAIN ANALYZE at 1 M users / 20 M signals,
# docs/BENCHMARKS.md). Off for the preview's own transaction only; the server keeps its setting.
WITHOUT_JIT = "SELECT set_config('jit', 'off', true)"
