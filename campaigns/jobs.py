"""Thin RQ entry points."""

import logging

log = logging.getLogger("pulse.messages")


def deliver() -> dict:
    """Deliver every due message (woken after commit, and by the tick hook)."""
    from rq import get_current_job

    from .delivery import deliver_messages
    from .wake import clear_wake_flag

    clear_wake_flag()
    result = deliver_messages()
    job = get_current_job()
    log.info("event=delivery_done job_id=%s claimed=%d sent=%d skipped=%d retried=%d failed=%d",
             job.id if job else "-", result.claimed, result.sent, result.skipped, result.retried,
             result.failed)
    return result.as_dict()
