"""The item engagement score: a closed form of `now`, so recomputing it is idempotent.

With `d` the fractional days since the last interaction (never negative) and
`n` the interaction count:

    score = (0.4 × min(1, 0.2 × n) + 0.6 × exp(−0.05 × d)) × 0.9^max(0, d − 30)

Frequency saturates at five interactions, recency decays smoothly, and past 30
idle days the whole score loses a further 10% per day. The same formula is
written in Python (`item_score`) and as SQL (`score_sql`) so the daily job and
the API answers can compute it set-based; a test holds the two together.
"""

import math
from datetime import datetime

from django.db import connection

# exp() and power() underflow to an error on PostgreSQL far out; past ten years the score
# is below 1e-160 anyway, so `d` is capped there in both forms.
MAX_DAYS = 3650.0
SECONDS_PER_DAY = 86400.0


def days_between(earlier: datetime, later: datetime) -> float:
    """Fractional days from `earlier` to `later`, clamped to [0, MAX_DAYS]."""
    return min(MAX_DAYS, max(0.0, (later - earlier).total_seconds() / SECONDS_PER_DAY))


def item_score(interactions: int, last_interaction_at: datetime, now: datetime) -> float:
    d = days_between(last_interaction_at, now)
    frequency = min(1.0, 0.2 * interactions)
    recency = math.exp(-0.05 * d)
    return (0.4 * frequency + 0.6 * recency) * 0.9 ** max(0.0, d - 30.0)


def days_sql(last_sql: str, now_sql: str = "%s") -> str:
    """SQL for the clamped fractional days from `last_sql` to `now_sql` (default: a parameter)."""
    if connection.vendor == "postgresql":
        raw = f"(EXTRACT(EPOCH FROM ({now_sql}::timestamptz - {last_sql}))::float8 / {SECONDS_PER_DAY})"
        return f"LEAST({MAX_DAYS}, GREATEST(0.0, {raw}))"
    raw = f"(julianday({now_sql}) - julianday({last_sql}))"
    return f"MIN({MAX_DAYS}, MAX(0.0, {raw}))"


def least() -> str:
    return "LEAST" if connection.vendor == "postgresql" else "MIN"


def greatest() -> str:
    return "GREATEST" if connection.vendor == "postgresql" else "MAX"


def score_sql(
    count_sql: str = "interactions", last_sql: str = "last_interaction_at", now_sql: str = "%s"
) -> str:
    """SQL computing the score. With the default `now_sql` its parameters are
    `score_params(now)`; pass a column as `now_sql` for a statement without parameters."""
    d = days_sql(last_sql, now_sql)
    return (
        f"((0.4 * {least()}(1.0, 0.2 * ({count_sql})) + 0.6 * EXP(-0.05 * {d}))"
        f" * POWER(0.9, {greatest()}(0.0, {d} - 30.0)))"
    )


def score_params(now: datetime) -> list:
    """The parameters of `score_sql` (now, twice: `d` appears twice)."""
    value = now if connection.vendor == "postgresql" else connection.ops.adapt_datetimefield_value(now)
    return [value, value]


def rounded(score: float) -> float:
    """Scores in answers: 4 decimals."""
    return round(score, 4)
