"""Event-driven invalidation (the drain handler): drop exactly the values a batch outdated.

For every signal of the batch, the pairs (its user, each feature whose
`invalidated_by` names the signal or `*`) lose their stored value and move
their generation, in one statement for the whole batch (profiles/store.py).
The next read recomputes them at once; the TTL stays as the safety net for a
missed event.

Moving a generation is a count, so a second pass over the same signals would
move it again: like the item engagement counters it relies on the drain's
claim for exactly-once and declares `accumulates`. A replay invalidates only
for the signals that had failed (never applied): the others' effect on the
log is what the stored values were computed from already.
"""

from collections import defaultdict

from . import registry, store
from .catalog import ANY


def invalidation_index() -> tuple[dict[str, list[str]], list[str]]:
    """{signal name: [feature names]} and the features invalidated by any signal."""
    by_name: dict[str, list[str]] = defaultdict(list)
    by_any: list[str] = []
    for name, feature in registry.features().items():
        for signal_name in feature.invalidated_by:
            (by_any.append(name) if signal_name == ANY else by_name[signal_name].append(name))
    return by_name, by_any


def drop_invalidated_values(signals, context) -> None:
    if context.replay:
        signals = [s for s in signals if s.failed_at is not None]
    by_name, by_any = invalidation_index()
    pairs = {
        (signal.user_id, feature)
        for signal in signals
        for feature in (*by_name.get(signal.name, ()), *by_any)
    }
    store.invalidate(pairs, context.now)


drop_invalidated_values.accumulates = True
