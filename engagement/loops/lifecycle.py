"""The lifecycle state machine: one transition table, one function, and its set-based twin.

States: active → goodbye_sent → (help_flow | remind_later | dormant), and back
to active on activity. Every change goes through `TRIGGERS`:

- `transition_state(user, trigger, now=, actor=)` moves one user and raises
  `InvalidTransition` (changing nothing) when the trigger is not valid now;
- `transition_many(trigger, now=, actor=, where=…)` moves every user the
  trigger is valid for, with one conditional `UPDATE … RETURNING` per source
  state (updates.py), so a row that changed meanwhile is re-checked by the
  database and left alone;
- `apply_activity(acts, …)` is the `user_activity` trigger for a drain batch,
  where each user has its own time (engagement/loops/lifecycle_activity.py).

Each change is logged as a `LifecycleTransition` (cause: job run or signal,
and actor), appends a `$lifecycle.changed` system signal, and queues the
trigger's message through PULSE_OUTBOX — all in the caller's transaction, for
exactly the rows the UPDATE returned. `transition_many` records its moves as
sets (`record_moves`: every user of a source state shares the from, to, time
and cause, so each write is one `INSERT … SELECT` from the ids); the drain's
changes, each with its own time and signal, go row by row (`record_changes`).
Both write the same columns. `act=False` (history, replays, the demo)
changes state but queues nothing and marks its signals as history.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db import transaction
from django.db.models import Q

from ..bulk import insert_select
from ..ingest import SignalSet, SystemSignal, record_system_signal_set, record_system_signals
from ..models import EndUser, JobRun, LifecycleState, LifecycleTransition
from ..outbox_port import MessageSet, queue
from .thresholds import inactive_filter
from .updates import update_returning

S = LifecycleState.State
ALL = (None, *S.values)  # None: the user has no state yet
CHANGED = "$lifecycle.changed"
SOURCE = "lifecycle"  # Message.source of what the lifecycle queues
GOODBYE = "engagement.goodbye.self_select"
HELP = "engagement.help"
WINDOW = timedelta(hours=48)  # to answer a goodbye; to use the help flow
REMIND_AFTER = timedelta(days=14)
RESPONSES = ("confused", "busy", "no_thanks", "stop")


class InvalidTransition(ValueError):
    """The trigger is not valid for the user's state (or no longer / not yet) at `now`."""


@dataclass(frozen=True)
class Trigger:
    name: str
    moves: dict  # from state (None: no row yet) → to state
    guard: Callable[[datetime], Q] | None = None  # still valid at `now`, on LifecycleState rows
    effects: Callable[[datetime], dict] = lambda now: {}  # other fields the move sets
    message: str | None = None  # template queued when it may act
    key_part: str = ""  # the message's idempotency key: <user>:<key_part>:<UTC date>


def _outstanding(now: datetime) -> Q:
    """A goodbye is answerable from when it was sent until it expires (inclusive)."""
    return Q(goodbye_sent_at__lte=now, goodbye_expires_at__gte=now)


def _response(name: str, to: str, **kw) -> Trigger:
    # Valid while its goodbye is outstanding, even if reading it made the user active.
    return Trigger(name, {S.GOODBYE_SENT: to, S.ACTIVE: to}, guard=_outstanding, **kw)


TRIGGERS: dict[str, Trigger] = {t.name: t for t in (
    Trigger("user_activity", {state: S.ACTIVE for state in ALL if state != S.ACTIVE}),
    Trigger(
        "inactivity_14d", {S.ACTIVE: S.GOODBYE_SENT}, guard=inactive_filter,
        effects=lambda now: {"goodbye_sent_at": now, "goodbye_expires_at": now + WINDOW},
        message=GOODBYE, key_part="goodbye_sent",
    ),
    _response("confused", S.HELP_FLOW, effects=lambda now: {"help_expires_at": now + WINDOW},
              message=HELP, key_part="help_flow"),
    _response("busy", S.REMIND_LATER, effects=lambda now: {"remind_at": now + REMIND_AFTER}),
    _response("no_thanks", S.DORMANT),
    # `stop` is accepted in every state; it also sets reengagement_opt_out (respond()).
    Trigger("stop", {S.GOODBYE_SENT: S.DORMANT, S.HELP_FLOW: S.DORMANT, S.REMIND_LATER: S.DORMANT}),
    Trigger("goodbye_timeout", {S.GOODBYE_SENT: S.DORMANT},
            guard=lambda now: Q(goodbye_expires_at__lte=now)),
    Trigger("help_timeout", {S.HELP_FLOW: S.DORMANT}, guard=lambda now: Q(help_expires_at__lte=now)),
    Trigger("reminder_due", {S.REMIND_LATER: S.DORMANT}, guard=lambda now: Q(remind_at__lte=now)),
)}


@dataclass(frozen=True)
class Cause:
    """Why a change happened and who did it: a job run, a signal, or an API call's actor."""

    actor: str
    job_run: JobRun | None = None
    signal_id: int | None = None


@dataclass(frozen=True)
class Change:
    user_id: int
    from_state: str | None
    to_state: str
    at: datetime
    signal_id: int | None = None
    realtime: bool = True
    actor: str | None = None  # when not the cause's (a drain batch: each signal's own)


@dataclass
class Moved:
    """What `transition_many` did: the user ids that moved, by source state."""

    by_source: dict = field(default_factory=dict)

    @property
    def user_ids(self) -> list[int]:
        return sorted(uid for ids in self.by_source.values() for uid in ids)


def trigger_named(name: str) -> Trigger:
    try:
        return TRIGGERS[name]
    except KeyError:
        raise InvalidTransition(f"unknown trigger {name!r}") from None


def valid_rows(trigger: Trigger, source: str, now: datetime):
    rows = LifecycleState.objects.filter(state=source)
    return rows.filter(trigger.guard(now)) if trigger.guard else rows


def transition_many(
    trigger_name: str, *, now: datetime, actor: str, where: Q | None = None, job_run: JobRun | None = None,
    act: bool = True, sources: Sequence[str] | None = None,
) -> Moved:
    """Move every user (of `where`) for whom the trigger is valid at `now`; in the caller's
    transaction. A fixed number of queries: one UPDATE per source state, then one write
    each for transitions, system signals and messages."""
    trigger = trigger_named(trigger_name)
    moved = Moved()
    with transaction.atomic():
        for source, target in trigger.moves.items():
            if source is None or (sources is not None and source not in sources):
                continue
            rows = valid_rows(trigger, source, now)
            if where is not None:
                rows = rows.filter(where)
            values = {"state": target, "changed_at": now, **trigger.effects(now)}
            ids = [row[0] for row in update_returning(rows, values, ("user",))]
            moved.by_source[source] = ids
        record_moves(moved, trigger=trigger, cause=Cause(actor, job_run=job_run), now=now, act=act)
    return moved


def transition_state(user: EndUser, trigger_name: str, *, now: datetime, actor: str,
                     job_run: JobRun | None = None, act: bool = True) -> LifecycleState:
    """Move one user; InvalidTransition (nothing changed) when the trigger is not valid now."""
    trigger = trigger_named(trigger_name)
    with transaction.atomic():
        current = LifecycleState.objects.filter(user=user).first()
        source = current.state if current else None
        if source not in trigger.moves or source is None:
            raise InvalidTransition(f"{trigger_name} is not valid in state {source or 'none'}")
        moved = transition_many(trigger_name, now=now, actor=actor, where=Q(user=user), job_run=job_run,
                                act=act, sources=[source])
        if not moved.user_ids:
            raise InvalidTransition(f"{trigger_name} is not valid for this user at this time")
        return LifecycleState.objects.get(user=user)


def record_changes(changes: Sequence[Change], *, trigger: Trigger, cause: Cause, now: datetime,
                   act: bool = True) -> None:
    """The transitions, `$lifecycle.changed` signals and messages of changes already applied."""
    if not changes:
        return
    run = cause.job_run
    LifecycleTransition.objects.bulk_create([
        LifecycleTransition(
            user_id=c.user_id, from_state=c.from_state or "", to_state=c.to_state, trigger=trigger.name,
            at=c.at, actor=c.actor or cause.actor, job_run=run, job_kind=run.kind if run else "",
            job_window=run.window if run else None, signal_id=c.signal_id or cause.signal_id,
        )
        for c in changes
    ])
    # A state's creation at the first activity is logged, but it changes no earlier state:
    # rules watching users see that activity signal itself, so no `$lifecycle.changed`.
    record_system_signals([
        SystemSignal(
            c.user_id, CHANGED, c.actor or cause.actor, occurred_at=c.at, realtime=c.realtime and act,
            properties={"from": c.from_state, "to": c.to_state, "trigger": trigger.name},
        )
        for c in changes if c.from_state is not None
    ], now=now)
    if act and trigger.message:
        queue([message_row(trigger, c.user_id, now) for c in changes], now=now)


def record_moves(moved: Moved, *, trigger: Trigger, cause: Cause, now: datetime, act: bool = True) -> None:
    """`record_changes` for users moved together at `now` by one cause, set-based: per source
    state one INSERT … SELECT each of transitions and signals, then one MessageSet."""
    for source, ids in moved.by_source.items():
        if not ids:
            continue
        target = trigger.moves[source]
        insert_select(LifecycleTransition, {"user_id": ids}, constants=_transition_constants(
            source, target, trigger, cause, now))
        record_system_signal_set(SignalSet(
            ids, CHANGED, cause.actor, occurred_at=now, realtime=act,
            properties={"from": source, "to": target, "trigger": trigger.name},
        ), now=now)
    if act and trigger.message and moved.user_ids:
        queue(message_set(trigger, moved.user_ids, now), now=now)


def _transition_constants(source, target, trigger: Trigger, cause: Cause, now: datetime) -> dict:
    run = cause.job_run
    return {"from_state": source or "", "to_state": target, "trigger": trigger.name, "at": now,
            "actor": cause.actor, "job_run_id": run.pk if run else None, "job_kind": run.kind if run else "",
            "job_window": run.window if run else None, "signal_id": cause.signal_id}


def message_set(trigger: Trigger, user_ids: Sequence[int], now: datetime) -> MessageSet:
    """The trigger's message for many users: the set form of `message_row`."""
    day = now.astimezone(UTC).date().isoformat()
    return MessageSet(user_ids, trigger.message, SOURCE, key_suffix=f":{trigger.key_part}:{day}")


def message_row(trigger: Trigger, user_id: int, now: datetime) -> dict:
    day = now.astimezone(UTC).date().isoformat()
    return {
        "user_id": user_id, "template": trigger.message, "context": {},
        "idempotency_key": f"{user_id}:{trigger.key_part}:{day}", "source": SOURCE,
    }


def respond(user: EndUser, response: str, *, now: datetime, actor: str) -> LifecycleState | None:
    """A user's answer to the goodbye. `stop` is valid in every state (and before any):
    it sets reengagement_opt_out and ends an open goodbye, help flow or reminder."""
    if response not in RESPONSES:
        raise InvalidTransition(f"unknown response {response!r}")
    with transaction.atomic():
        if response != "stop":
            return transition_state(user, response, now=now, actor=actor)
        flipped = EndUser.objects.filter(pk=user.pk, reengagement_opt_out=False).update(
            reengagement_opt_out=True
        )
        user.reengagement_opt_out = True
        state = LifecycleState.objects.select_for_update().filter(user=user).first()
        if state is not None and state.state in TRIGGERS["stop"].moves:
            return transition_state(user, "stop", now=now, actor=actor)
        if flipped:  # no state to change, but the opt-out is a change to the user: a signal
            current = state.state if state else None
            record_system_signals([SystemSignal(user.pk, CHANGED, actor, properties={
                "from": current, "to": current, "trigger": "stop", "reengagement_opt_out": True,
            })], now=now)
        return state


def serialize(state: LifecycleState | None, transitions: Sequence[LifecycleTransition] = ()) -> dict | None:
    if state is None:
        return None

    def iso(value):
        return value.isoformat() if value else None

    return {
        "state": state.state,
        "last_activity_at": iso(state.last_activity_at),
        "goodbye_sent_at": iso(state.goodbye_sent_at),
        "goodbye_expires_at": iso(state.goodbye_expires_at),
        "help_expires_at": iso(state.help_expires_at),
        "remind_at": iso(state.remind_at),
        "changed_at": iso(state.changed_at),
        "transitions": [
            {"from": t.from_state or None, "to": t.to_state, "trigger": t.trigger, "at": iso(t.at)}
            for t in transitions
        ],
    }


RECENT_TRANSITIONS = 10


def lifecycle_of(user: EndUser) -> dict | None:
    """LIFECYCLE for the API: two queries (the state, the latest 10 transitions)."""
    state = LifecycleState.objects.filter(user=user).first()
    if state is None:
        return None
    recent = LifecycleTransition.objects.filter(user=user).order_by("-at", "-pk")[:RECENT_TRANSITIONS]
    return serialize(state, list(recent))
