"""`GET /healthz`: database, Redis and scheduler status.

Redis is asked through the breaker: while it is open (a Redis error in this
process less than PULSE_REDIS_BREAKER_SECONDS ago) Redis is reported down at once.
"""

from datetime import datetime

from django.conf import settings
from django.db import DatabaseError, connection
from django.http import JsonResponse
from django.utils import timezone

from .. import redis_breaker
from ..api import public_view
from ..jobs import last_tick


@public_view(("GET", "HEAD"))
def healthz(request):
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        database = "ok"
    except DatabaseError:
        return JsonResponse({"status": "down", "database": "down"}, status=503)
    redis_ok = redis_breaker.call("healthz", lambda client: bool(client.ping()), False)
    scheduler = _scheduler_status() if redis_ok else "unknown"
    degraded = not redis_ok or scheduler != "ok"
    return JsonResponse(
        {
            "status": "degraded" if degraded else "ok",
            "database": database,
            "redis": "ok" if redis_ok else "down",
            "scheduler": scheduler,
        }
    )


def _scheduler_status() -> str:
    try:
        value = last_tick()
    except Exception:  # noqa: BLE001
        return "unknown"
    if not value:
        return "silent"
    age = timezone.now() - datetime.fromisoformat(value)
    return "ok" if age <= settings.PULSE_SCHEDULER_SILENT_AFTER else "silent"
