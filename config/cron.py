"""rqcron configuration: one 60-second tick (docs/ARCHITECTURE.md §3).

The tick only enqueues: each due job run goes to the queue its schedule names, with the
schedule's own timeout, so the tick's timeout stays short.
"""
from rq import cron

from engagement.scheduler import tick

cron.register(tick, queue_name="default", interval=60, job_timeout=120, name="pulse-tick")
