"""rqcron configuration: one 60-second tick runs every due schedule (DESIGN.md §3)."""
from rq import cron

from engagement.scheduler import tick

cron.register(tick, queue_name="default", interval=60, job_timeout=900, name="pulse-tick")
