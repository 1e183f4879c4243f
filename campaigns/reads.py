"""The first read of a message closes the engagement loop.

`mark_read` sets `read_at` only when it is still empty (one conditional
update), so only the first read counts. On that first read, with
LOOPS_ENABLED, an ENGAGE signal (`$engage`, the template's feature, key
`engage:<message id>`) is appended in the same transaction, attributed to the
user's primary tenant; a user with no membership gets none (best-effort
attribution, as the tenant is unknown). Revisits emit nothing.
"""

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import transaction

from engagement.models import EndUser

from .models import Message
from .system_signals import record_engage


@dataclass(frozen=True)
class ReadResult:
    first_read: bool
    read_at: datetime | None


def mark_read(message: Message, *, actor: str, now: datetime) -> ReadResult:
    with transaction.atomic():
        first = bool(
            Message.objects.filter(pk=message.pk, read_at__isnull=True, status=Message.Status.SENT)
            .update(read_at=now)
        )
        if first and settings.LOOPS_ENABLED:
            tenant_id = EndUser.objects.filter(pk=message.user_id).values_list(
                "primary_tenant_id", flat=True).first()
            if tenant_id is not None:
                record_engage(message.user_id, tenant_id, feature=message.template_version.feature,
                              message_id=message.pk, actor=actor, now=now)
    read_at = Message.objects.filter(pk=message.pk).values_list("read_at", flat=True).first()
    return ReadResult(first_read=first, read_at=read_at)
