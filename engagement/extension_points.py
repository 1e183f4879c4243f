"""Every extension point of Pulse, and the contract an entry signs.

A lower layer calls a higher one only through an ordered registry named in
settings, like MIDDLEWARE (docs/ARCHITECTURE.md, "Apps, layers and what each
owns"). This module is where those contracts are written down: one
`typing.Protocol` per registry, whose docstring says how an entry is called,
in which transaction, what it returns, and the two rules most entries share:

- idempotent: calling it again with the same input leaves the same state
  (the drain retries, replay re-runs, operators re-run jobs by hand);
- set-based: a bounded number of queries per call, whatever the size of the
  batch or of the user's history (no query per signal, per row, per loser).

`REGISTRIES` maps each setting to its protocol and to how `engagement/checks.py`
validates it at start-up (`manage.py check`, `migrate`), so a typo in settings
fails there and not at the first drain.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, TypedDict

if TYPE_CHECKING:
    from .erase import ErasureContext
    from .models import EndUser, JobRun, Signal
    from .pipeline import HandlerContext
    from .scheduler import JobResult


class SignalHandler(Protocol):
    """An entry of PULSE_SIGNAL_HANDLERS: derives state from a batch of signals.

    Called as `handler(signals, context)`: `signals` is the claimed batch (a
    list of `Signal`, oldest first, any users, any sources: api, segment,
    import, system), `context` an `engagement.pipeline.HandlerContext`
    (`now`, `replay`, and whether a signal may act — history and replays
    update state but never fire reactions or messages).

    Runs inside the drain's transaction, in a savepoint shared by all handlers
    of the batch: if any handler raises, the whole batch is rolled back and
    re-run in halves to isolate the failing signal, so a handler can see the
    same signals several times. Replay (`replay_signals`) runs it again over
    processed signals. Hence it must be idempotent; a second run over the same
    batch changes nothing. It must be set-based: its query count does not grow
    with the batch (tests/engagement/test_handler_contracts.py checks both for
    every registered handler). It returns None and signals errors by raising.

    A handler that accumulates (counts interactions) cannot be idempotent over a
    second drain of the same signals, and need not be: the claim hands each
    signal to the drain once, in the same transaction as the handlers. Such a
    handler sets `accumulates = True` and must make replays safe instead
    (`context.replay`: count only the signals that had failed, which were never
    counted); the contract test then checks a replay changes nothing.
    """

    def __call__(self, signals: Sequence[Signal], context: HandlerContext, /) -> None: ...


class MergeHandler(Protocol):
    """An entry of PULSE_USER_MERGE_HANDLERS: moves an app's per-user rows to the survivor.

    Called as `handler(survivor, losers, now)` inside the merge transaction
    (identify), before the losers are retired, so they still hold their
    identifiers. It resolves its own unique collisions (two rows for the same
    tenant, item …). Set-based: a bounded number of queries whatever the
    number of losers and rows. Idempotent: run again, it finds nothing left to
    move. Returns None; raising aborts the whole identify.
    """

    def __call__(self, survivor: EndUser, losers: Sequence[EndUser], now: datetime, /) -> None: ...


class EraseHandler(Protocol):
    """An entry of PULSE_USER_ERASE_HANDLERS: removes an app's personal data for an erasure.

    Called as `handler(erasure)` with an `engagement.erase.ErasureContext`:
    `erasure.user`, `erasure.merged_ids` (every user ever merged into it,
    whose leftover rows are the same person's data), `erasure.user_ids`
    (both together: filter on this) and `erasure.now`. One object rather than
    positional arguments so that the safe set is the one at hand and the
    context can grow without breaking every handler.

    Runs inside the erase transaction, before the user rows are scrubbed.
    Personal data goes; aggregate-safe counts may stay. Set-based (bounded
    queries whatever the history) and idempotent (erasing twice is harmless;
    the counts are then zero). Returns a dict of counts (`{"signals_scrubbed":
    12}`) merged into the `Erasure` record, or None; keys are named for the
    app so handlers do not overwrite each other's.
    """

    def __call__(self, erasure: ErasureContext, /) -> Mapping[str, int] | None: ...


class UserSection(Protocol):
    """An entry of PULSE_USER_SECTIONS: one key of `GET /api/v1/users/<user_ref>`.

    Declares its `key` (a lower-case identifier, decorate with `user_section`)
    so collisions are found at start-up: a key equal to a core field of the
    user or to another section's key is a system-check error. Called as
    `section(user)` and returns the JSON-able value for that key.

    Reads only, in its own savepoint, with a bounded number of queries (slices,
    `select_related`). A section that raises is left out of the answer and its
    key is listed in `sections_failed`; the other sections and the core fields
    are still served (engagement/user_sections.py).
    """

    key: str

    def __call__(self, user: EndUser, /) -> Any: ...


class AdminPanel(Protocol):
    """An entry of PULSE_USER_ADMIN_PANELS: one panel on the user's admin page.

    Called as `panel(user)`; returns `{"title", "template", "context"}` or None
    to show nothing. Reads only, in its own savepoint, bounded queries; one that
    raises is shown as failed without hiding the others (engagement/admin_panels.py
    has the full contract).
    """

    def __call__(self, user: EndUser, /) -> Mapping[str, Any] | None: ...


class OpenApiFragment(TypedDict, total=False):
    """An entry of PULSE_OPENAPI_FRAGMENTS: a dotted path to a mapping, not a callable.

    `{"paths": {"/api/v1/…": {"get": operation, …}}, "components": {"schemas": {…}}}`.
    `engagement.openapi.document()` merges every fragment; the same path and
    method in two fragments is an error (at start-up too). Each operation's
    `x-pulse-scope` is then read from its view, so a fragment cannot drift from
    what the plumbing enforces.
    """

    paths: Mapping[str, Mapping[str, Mapping[str, Any]]]
    components: Mapping[str, Mapping[str, Any]]


class Audience(Protocol):
    """An entry of PULSE_AUDIENCES: a campaign audience type. PROVISIONAL.

    The campaigns layer that reads this registry is not written yet, so the
    contract is only what every design of it needs: an importable object with
    a `key` (lower-case identifier) naming the type in campaign definitions,
    unique across the registry. How it yields its users (presumably, like the
    other registries, set-based and read-only: a queryset of `EndUser` for given
    parameters and `now`) is for the campaigns issue to settle; it should then
    tighten this protocol and its check.
    """

    key: str


class TickHook(Protocol):
    """An entry of PULSE_TICK_HOOKS: work done on every scheduler tick (every 60 s).

    Called as `hook(now)`. It must not assume a transaction (open your own),
    be quick (enqueue an RQ job for anything slow), and be idempotent: a retried
    tick or a second scheduler calls it again for the same minute. Returns None;
    what it raises is the tick's to log.
    """

    def __call__(self, now: datetime, /) -> None: ...


class Outbox(Protocol):
    """PULSE_OUTBOX: one dotted path (not a list) to the function that queues messages.

    The only port from the engagement loops up to `campaigns`. Called as
    `queue_messages(rows, now=now)` INSIDE the caller's transaction, so a
    message is queued exactly when the state change that caused it commits; it
    never sends (delivery is a later job). Each row is a mapping of
    `campaigns.outbox.MessageRow`'s fields (user_id, template, context,
    idempotency_key, source, scheduled_for …). Set-based: one call per batch of
    rows, bounded queries. Idempotent through the rows' (source, key): a repeated
    key with the same content creates nothing. Returns one result per row,
    telling which were new. Instead of rows it also takes one
    `engagement.outbox_port.MessageSet` (many users, one template, keys
    `<user id><suffix>`) and returns a `QueuedSet`, storing the same columns the
    rows would (engagement/outbox_port.py).
    """

    def __call__(self, rows: Sequence[Mapping[str, Any]], /, *, now: datetime) -> object: ...


class OutboxSuppression(Protocol):
    """PULSE_OUTBOX_SUPPRESSED: one dotted path (or None) to `suppressed(category, user_id)`.

    Which users the send gate would drop for a message category, as SQL, so a
    loop can leave those users where they are instead of moving them towards a
    message nobody receives. `user_id` is an expression naming the caller's
    user column (`OuterRef("user_id")`); the answer is a boolean expression
    (`Exists(...)`, or `Value(False)` for a category preferences never stop)
    the caller puts inside its own conditional UPDATE. Reads only, no query of
    its own: set-based by construction. Implemented by
    `campaigns.suppression.suppressed`, next to the gate it restates.
    """

    def __call__(self, category: str, user_id: Any, /) -> Any: ...


class CalibrationLookup(Protocol):
    """PULSE_CALIBRATION_LOOKUP: one dotted path (or None) to `lookup(key)`.

    Per-tenant calibrated values for `key` (e.g. `inactivity-threshold-days`):
    a queryset with a `tenant_id` and a numeric `days` per row, at most one
    row per tenant, or None when there is nothing to read yet. The loops join
    it in SQL through the user's primary tenant (never one query per user)
    and fall back to their setting where a tenant has no row. Consulted only
    while LOOPS_ENABLED is on.
    """

    def __call__(self, key: str, /) -> Any: ...


class ScheduledJob(Protocol):
    """The `func` of a PULSE_SCHEDULES entry: one window of a scheduled job.

    Called as `fn(run, now)` with its `JobRun` and the window's evaluation time,
    outside any transaction (it opens its own, per chunk). Idempotent per
    window: re-running a window (resumed after a crash, or by hand with
    `--now`) does no double work; chunked jobs keep progress in `run.cursor`
    and call `engagement.scheduler.extend_lease`. Returns a `JobResult`;
    raising marks the run failed.
    """

    def __call__(self, run: JobRun, now: datetime, /) -> JobResult: ...


class ScheduleEntry(TypedDict, total=False):
    """A PULSE_SCHEDULES entry, written `(kind, cron, func[, queue[, timeout]])`.

    `kind` names the job (unique; JobRun rows carry it), `cron` is a UTC cron
    expression with five fields (the tick runs once a minute), `func` a dotted
    path to a `ScheduledJob`; `queue` (a name in RQ_QUEUES) and `timeout`
    (seconds, > 0) are optional. A mapping with these keys is accepted too.
    """

    kind: str
    cron: str
    func: str
    queue: str
    timeout: int


def user_section(key: str) -> Callable[[Callable], Callable]:
    """Declare a user section's key: `@user_section("memberships")`."""

    def declare(section: Callable) -> Callable:
        section.key = key
        return section

    return declare


class Registry(NamedTuple):
    protocol: type
    # How engagement/checks.py validates the setting:
    #   "callables"  a list of dotted paths to callables the protocol's call binds to
    #   "sections"   the same, each with a declared unique `key` that is no core user field
    #   "keys"       a list of dotted paths to objects with a unique `key`
    #   "fragments"  a list of dotted paths to mappings merged without collision
    #   "path"       one dotted path to a callable, or unset / None / ""
    #   "schedules"  a list of ScheduleEntry
    validate: str


REGISTRIES: dict[str, Registry] = {
    "PULSE_SIGNAL_HANDLERS": Registry(SignalHandler, "callables"),
    "PULSE_USER_MERGE_HANDLERS": Registry(MergeHandler, "callables"),
    "PULSE_USER_ERASE_HANDLERS": Registry(EraseHandler, "callables"),
    "PULSE_USER_SECTIONS": Registry(UserSection, "sections"),
    "PULSE_USER_ADMIN_PANELS": Registry(AdminPanel, "callables"),
    "PULSE_OPENAPI_FRAGMENTS": Registry(OpenApiFragment, "fragments"),
    "PULSE_AUDIENCES": Registry(Audience, "keys"),
    "PULSE_TICK_HOOKS": Registry(TickHook, "callables"),
    "PULSE_OUTBOX": Registry(Outbox, "path"),
    "PULSE_OUTBOX_SUPPRESSED": Registry(OutboxSuppression, "path"),
    "PULSE_CALIBRATION_LOOKUP": Registry(CalibrationLookup, "path"),
    "PULSE_SCHEDULES": Registry(ScheduledJob, "schedules"),
}
