"""The send gate, in order, each step with its own skip reason:

1. `user_erased`: the user was erased;
2. `unsubscribed_all`, then `category_opt_out`: not for `transactional` and `system`;
3. `frequency_cap`: per user and category in a rolling window, counting the
   messages that passed the cap and are `sending` or `sent`, across channels.
   Defaults in PULSE_FREQUENCY_CAPS (at most 3 `marketing` per 7 days);
   `transactional`, `system` and lifecycle-machine messages are exempt.

The gate runs on a whole claimed batch with a fixed number of queries,
whatever its size: the users come with the batch, their preferences in one
query, and the cap inside the caller's transaction, which takes a
transaction-scoped advisory lock on PostgreSQL for every (user, category) the
batch counts against (one statement, in a fixed order so two workers never
deadlock; no row is written, where lock rows cost a write per message) and
counts what already passed in one grouped query. The caller
records the messages that pass before it commits — in-app ones as sent with
`gated_at`, external ones marked `gated_at` before they are sent — so a second
worker counting for one of those users waits for the lock and then sees them.
The user rows the drain updates are never locked.
"""

from collections import defaultdict
from datetime import datetime

from django.conf import settings
from django.db import connection

from .id_lists import id_in, ids_match
from .models import Category, Message
from .preferences import block_reason, preferences_of

Reason = Message.SkipReason
EXEMPT_FROM_CAP = {Category.TRANSACTIONAL, Category.SYSTEM}
COUNTED = [Message.Status.SENDING, Message.Status.SENT]


def early_reason(message, user, pref) -> str | None:
    """The steps that need no lock: erasure and preferences."""
    if user.deleted_at is not None:
        return Reason.USER_ERASED
    return block_reason(pref, message.category)


def cap_of(message) -> tuple[int, object] | None:
    """(limit, window) that applies to `message`, or None when it is exempt."""
    if message.category in EXEMPT_FROM_CAP or message.source == Message.Source.LIFECYCLE:
        return None
    return settings.PULSE_FREQUENCY_CAPS.get(message.category)


def caps_of(messages: list) -> dict[int, tuple[int, object] | None]:
    """message id → `cap_of(message)`, worked out once per (category, source) of the batch."""
    by_kind: dict[tuple[str, str], tuple[int, object] | None] = {}
    caps = {}
    for message in messages:
        kind = (message.category, message.source)
        if kind not in by_kind:
            by_kind[kind] = cap_of(message)
        caps[message.pk] = by_kind[kind]
    return caps


def early_reasons(messages: list, prefs: dict | None = None) -> dict[int, str | None]:
    """message id → the reason of the first lock-free step that stops it, or None.
    `messages` come with their users; `prefs` (user id → Preference, absent for users with
    none) when the caller read them with the batch, else one query."""
    if prefs is None:
        prefs = preferences_of({m.user_id for m in messages})
    return {m.pk: early_reason(m, m.user, prefs.get(m.user_id)) for m in messages}


def over_frequency_cap(messages: list, *, now: datetime) -> set[int]:
    """The ids of `messages` that the frequency cap stops; exempt messages always pass.

    Call it inside a transaction and record the messages that pass before it
    commits (sent with `gated_at`, or `mark_counted`): the cap's locks are held
    until then, so a racing worker counts them. Within the batch, earlier
    messages (by id) take a user's remaining room first. It waits for locks
    another worker holds; `frequency_cap(…, wait=False)` does not."""
    over, _held = frequency_cap(messages, now=now, wait=True)
    return over


def frequency_cap(messages: list, *, now: datetime, wait: bool) -> tuple[set[int], set[int]]:
    """(over, held): the ids of `messages` the cap stops, and with `wait=False` the ids it
    could not decide because another transaction holds their (user, category) lock.

    `wait=False` is for a batch whose messages stay due when it leaves them alone (in-app
    messages under their row locks): rather than wait for the other worker's commit — two
    batches of random users nearly always share a few, so waiting serialized the workers —
    it takes the free locks and leaves the held messages for a later batch, unwritten. When
    every lock it needs is held it waits for them all after all (it holds none then, so it
    cannot deadlock), so a batch never passes without deciding something."""
    if not connection.in_atomic_block:
        raise RuntimeError("the frequency cap must be evaluated inside a transaction")
    groups: dict[tuple[int, str], list] = defaultdict(list)
    caps = caps_of(messages)
    for message in sorted(messages, key=lambda m: m.pk):
        if caps[message.pk] is not None:
            groups[(message.user_id, message.category)].append(message)
    if not groups:
        return set(), set()
    held_keys = set() if wait else _try_lock(sorted(groups))
    if wait or len(held_keys) == len(groups):  # wait for every lock (none is held yet)
        _lock(sorted(groups))
        held_keys = set()
    held = {m.pk for key in held_keys for m in groups.pop(key)}
    counted = _counted(groups, exclude=[m.pk for group in groups.values() for m in group], now=now)
    over = set()
    for key, group in groups.items():
        room = max(0, caps[group[0].pk][0] - counted.get(key, 0))
        over.update(m.pk for m in group[room:])
    return over, held


def mark_counted(messages: list, token: str, *, now: datetime) -> None:
    """Make messages that passed the cap count against it before they are sent."""
    if messages:
        Message.objects.filter(id_in("id", [m.pk for m in messages]), lease_token=token).update(gated_at=now)


def _counted(groups: dict, *, exclude: list[int], now: datetime) -> dict[tuple[int, str], int]:
    """(user, category) → messages that already passed the cap within its window: one query
    (raw: it runs once a batch, and the ORM's compiling and row building were a tenth of a
    batch's Python time)."""
    qn = connection.ops.quote_name
    windows, params = [], []
    for category in sorted({category for _, category in groups}):
        _limit, window = settings.PULSE_FREQUENCY_CAPS[category]
        windows.append(f"({qn('category')} = %s AND {qn('gated_at')} >= %s)")
        params += [category, connection.ops.adapt_datetimefield_value(now - window)]
    users, user_params = ids_match(qn("user_id"), {user for user, _ in groups})
    own, own_params = ids_match(qn("id"), exclude)
    sql = (f"SELECT {qn('user_id')}, {qn('category')}, COUNT(*) FROM {qn(Message._meta.db_table)}"
           f" WHERE ({' OR '.join(windows)}) AND {users} AND {qn('status')} IN (%s, %s) AND NOT ({own})"
           f" GROUP BY {qn('user_id')}, {qn('category')}")
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *user_params, *COUNTED, *own_params])
        rows = cursor.fetchall()
    return {(user, category): n for user, category, n in rows if (user, category) in groups}


# The cap's advisory-lock keys: user id × 8 + the category's code. Pulse takes no other
# advisory locks; a deployment sharing the database must keep out of this key space.
CATEGORY_CODES = {category: code for code, category in enumerate(Category.values, start=1)}


def cap_lock_key(user_id: int, category: str) -> int:
    return user_id * 8 + CATEGORY_CODES[category]


def _try_lock(keys: list[tuple[int, str]]) -> set[tuple[int, str]]:
    """Take the cap locks of `keys` that are free, without waiting; the keys another
    transaction holds. SQLite: none (its IMMEDIATE transaction holds the database)."""
    if connection.vendor != "postgresql":
        return set()
    by_lock = {cap_lock_key(user, category): (user, category) for user, category in keys}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT k FROM unnest(%s::bigint[]) AS k WHERE NOT pg_try_advisory_xact_lock(k)",
            ["{" + ",".join(map(str, sorted(by_lock))) + "}"],
        )
        return {by_lock[k] for (k,) in cursor.fetchall()}


def _lock(keys: list[tuple[int, str]]) -> None:
    """Hold the cap locks of `keys` ((user, category)) until the transaction ends.

    PostgreSQL: `pg_advisory_xact_lock` per key, in ascending key order in every worker
    (so none deadlocks), all in one statement. SQLite: the transaction is IMMEDIATE, so it
    already holds the database's write lock."""
    if connection.vendor != "postgresql":
        return
    ordered = sorted({cap_lock_key(user, category) for user, category in keys})
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_advisory_xact_lock(k)) FROM "
            "(SELECT k FROM unnest(%s::bigint[]) AS k ORDER BY k) AS ordered",
            ["{" + ",".join(map(str, ordered)) + "}"],
        )
