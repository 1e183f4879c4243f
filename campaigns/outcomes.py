"""Recording what became of a claimed batch: one conditional UPDATE per outcome kind.

A batch's outcomes are collected in Python and written together: the sent,
failed, retried and skipped messages each with one `UPDATE … FROM (VALUES …)`
(campaigns/held_update.py) whose rows carry their own values (the
rendered snapshot, the error, the next attempt, the skip reason). Every update of a
leased batch holds only where the message is still `sending` under the batch's
lease token, so a worker whose lease lapsed (its messages were reclaimed)
records nothing; a locked batch is held by its transaction's row locks.
For in-app messages the `sent` update is the delivery itself: exactly once.
"""

from dataclasses import asdict, dataclass, field
from datetime import datetime

from .held_update import update_held
from .models import Message

Status = Message.Status
NOT_RENDERED = {"locale": "", "subject": "", "text": "", "html": "", "rendered_actions": []}


@dataclass
class DeliveryResult:
    batches: int = 0
    claimed: int = 0
    sent: int = 0
    skipped: int = 0
    retried: int = 0
    failed: int = 0
    lost: int = 0  # outcomes not recorded because the lease had lapsed
    deferred: int = 0  # in-app messages left due: another worker held their cap lock

    def add(self, other: "DeliveryResult") -> None:
        for name, value in asdict(other).items():
            setattr(self, name, getattr(self, name) + value)

    def as_dict(self) -> dict:
        return asdict(self)


def snapshot(rendered) -> dict:
    """What the user saw, frozen on the message."""
    return {"locale": rendered.locale, "subject": rendered.subject, "text": rendered.text,
            "html": rendered.html, "rendered_actions": rendered.actions}


@dataclass
class Outcomes:
    """The outcomes of one batch, not yet written: under a lease `token`, or with
    `token=None` for messages the caller's transaction holds locked (campaigns/delivery.py),
    whose outcome then also records the attempt (no claim write did)."""

    token: str | None
    now: datetime
    sent: list[dict] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)
    retried: list[dict] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)

    def _row(self, message, **values) -> dict:
        if self.token is None:
            values["attempts"] = message.attempts
        return {"id": message.pk, **values}

    def skip(self, message, reason: str) -> None:
        self.skipped.append(self._row(message, skip_reason=reason))

    def send(self, message, rendered, provider_id: str = "", *, counted: bool = False) -> None:
        """`counted`: the message passed a frequency cap, so from now on it counts against it."""
        self.sent.append(self._row(message, provider_id=provider_id, gated_at=self.now if counted else None,
                                   **snapshot(rendered)))

    def fail(self, message, error: str, rendered=None) -> None:
        content = snapshot(rendered) if rendered is not None else NOT_RENDERED
        self.failed.append(self._row(message, last_error=error[:1000], **content))

    def retry(self, message, error: str, *, at: datetime) -> None:
        self.retried.append(self._row(message, last_error=error[:1000], next_attempt_at=at))

    def flush(self, result: DeliveryResult) -> None:
        """Write every collected outcome (at most one statement per kind) and count them."""
        kinds = {
            "sent": {"status": Status.SENT, "sent_at": self.now, "last_error": ""},
            "failed": {"status": Status.FAILED},
            "retried": {"status": Status.QUEUED, "gated_at": None},
            "skipped": {"status": Status.SKIPPED},
        }
        for kind, common in kinds.items():
            rows = getattr(self, kind)
            if not rows:
                continue
            done = len(update_held(rows, token=self.token,
                                   common={**common, "lease_token": "", "lease_expires_at": None}))
            setattr(result, kind, getattr(result, kind) + done)
            result.lost += len(rows) - done
            rows.clear()
