"""Item tracking in the drain: what each user engages with, counted per interaction type.

A signal with an `item` counts once for it, as its `interaction` (default
`view`). A signal named in PULSE_ITEM_TEXT_SIGNALS (default `message.received`,
the user's own chat text) has item keys extracted from `properties.text` with
PULSE_ITEM_KEY_PATTERN, and each distinct key counts once as a `mention`.
Pulse's own signals (`$…`, source `system`) are bookkeeping, not interactions.

The batch becomes one row per (user, item), upserted in one statement (per
chunk) in (user, item) order, so two drains lock rows in the same order and
cannot deadlock. The upsert adds counts and merges `by_type` in SQL, so it is
right under concurrency on both databases. Tracking is state, not an action:
it runs for history and imports too. A failure is contained in a savepoint and
logged, and never fails the drain.

Counts are not idempotent by nature: on a replay only signals that had failed
(and so were never counted) are counted.
"""

import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache

from django.conf import settings
from django.db import connection, transaction

from ..bulk import insert_returning
from ..models import ItemEngagement, Signal
from .scoring import greatest, item_score, least, score_sql

log = logging.getLogger("pulse.items")

DEFAULT_INTERACTION = "view"
MENTION = "mention"
CONTEXT_CHARS = 200
MAX_KEYS_PER_TEXT = 100  # a pasted list of keys must not become thousands of rows
MAX_TEXT_SCANNED = 20_000


@dataclass
class Tally:
    """One (user, item) of a batch."""

    by_type: Counter = field(default_factory=Counter)
    first: datetime | None = None
    last: datetime | None = None
    context: str = ""
    context_at: datetime | None = None

    def add(self, interaction: str, at: datetime, text: str | None) -> None:
        self.by_type[interaction] += 1
        self.first = at if self.first is None or at < self.first else self.first
        self.last = at if self.last is None or at > self.last else self.last
        if text and (self.context_at is None or at >= self.context_at):
            self.context, self.context_at = text[:CONTEXT_CHARS], at


def track_item_engagement(signals, context) -> None:
    """The PULSE_SIGNAL_HANDLERS entry."""
    if context.replay:
        signals = [s for s in signals if s.failed_at is not None]
    try:
        tallies = tally(signals)
        if not tallies:  # no savepoint for a batch without items (a replay of processed signals)
            return
        with transaction.atomic():
            upsert_tallies(tallies, context.now)
    except Exception as exc:  # noqa: BLE001 - tracking must never fail the drain
        log.warning(
            "event=item_tracking_failed signals=%d error_type=%s", len(signals), type(exc).__name__
        )



# Counts are not idempotent over a second drain of the same signals; the claim makes each
# signal reach the drain once, and replays count only signals that had failed.
track_item_engagement.accumulates = True

def tally(signals) -> dict[tuple[int, str], Tally]:
    tallies: dict[tuple[int, str], Tally] = {}
    text_signals = set(settings.PULSE_ITEM_TEXT_SIGNALS)
    for signal in signals:
        if signal.source == Signal.Source.SYSTEM or signal.name.startswith("$"):
            continue
        text = _text_of(signal)
        if signal.item:
            key = (signal.user_id, signal.item)
            tallies.setdefault(key, Tally()).add(
                signal.interaction or DEFAULT_INTERACTION, signal.occurred_at, text
            )
        if signal.name in text_signals and text:
            for item in item_keys(text):
                tallies.setdefault((signal.user_id, item), Tally()).add(MENTION, signal.occurred_at, text)
    return tallies


def _text_of(signal) -> str | None:
    text = (signal.properties or {}).get("text") if isinstance(signal.properties, dict) else None
    return text if isinstance(text, str) and text.strip() else None


@cache
def _pattern(source: str) -> re.Pattern:
    return re.compile(source)


def item_keys(text: str) -> list[str]:
    """The distinct item keys in `text`, in order of first appearance (at most 100)."""
    keys: dict[str, None] = {}
    for match in _pattern(settings.PULSE_ITEM_KEY_PATTERN).finditer(text[:MAX_TEXT_SCANNED]):
        key = match.group(0)
        if key and len(key) <= 255:
            keys[key] = None
            if len(keys) >= MAX_KEYS_PER_TEXT:
                break
    return list(keys)


def upsert_tallies(tallies: dict[tuple[int, str], Tally], now: datetime) -> None:
    if not tallies:
        return
    rows = [
        {
            "user_id": user_id,
            "item": item,
            "interactions": sum(t.by_type.values()),
            "by_type": dict(sorted(t.by_type.items())),
            "first_interaction_at": t.first,
            "last_interaction_at": t.last,
            "context": t.context,
            "score": item_score(sum(t.by_type.values()), t.last, now),
            "scored_at": now,
        }
        for (user_id, item), t in sorted(tallies.items())
    ]
    insert_returning(
        ItemEngagement, rows, conflict_fields=["user", "item"], update_fields=["scored_at"],
        update_expressions=merge_expressions(), returning=("id",),
    )


def merge_expressions() -> dict[str, str]:
    """How a stored row absorbs an incoming one (SQL for insert_returning's upsert)."""
    last = f"{greatest()}({{table}}.last_interaction_at, EXCLUDED.last_interaction_at)"
    count = "{table}.interactions + EXCLUDED.interactions"
    return {
        "interactions": count,
        "by_type": by_type_sum_sql(),
        "first_interaction_at": f"{least()}({{table}}.first_interaction_at, EXCLUDED.first_interaction_at)",
        "last_interaction_at": last,
        "context": (
            "CASE WHEN EXCLUDED.context <> '' AND EXCLUDED.last_interaction_at >= "
            "{table}.last_interaction_at THEN EXCLUDED.context ELSE {table}.context END"
        ),
        "score": score_sql(count, last, now_sql="EXCLUDED.scored_at"),
    }


def by_type_sum_sql() -> str:
    """The stored and the incoming per-type counts, summed key by key, as one JSON object."""
    if connection.vendor == "postgresql":
        # Only the incoming keys (usually one) are visited; `||` keeps the stored others.
        return (
            "({table}.by_type || COALESCE((SELECT jsonb_object_agg(key, "
            "COALESCE(({table}.by_type ->> key)::bigint, 0) + value::bigint) "
            "FROM jsonb_each_text(EXCLUDED.by_type)), jsonb_build_object()))"
        )
    return (
        "(SELECT json_group_object(k, n) FROM ("
        "SELECT key AS k, SUM(value) AS n FROM ("
        "SELECT key, value FROM json_each({table}.by_type) UNION ALL "
        "SELECT key, value FROM json_each(EXCLUDED.by_type)) GROUP BY key))"
    )
