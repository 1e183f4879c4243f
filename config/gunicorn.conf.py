"""gunicorn settings for the web process (gthread workers)."""
import os
import sys
from pathlib import Path

import environ

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engagement.log_format import gunicorn_logconfig  # noqa: E402 - needs the path above

# Web processes share a psycopg connection pool on PostgreSQL (config/settings.py).
os.environ.setdefault("PULSE_DB_POOL", "1")

# Loopback by default (behind a reverse proxy); BIND=0.0.0.0:8000 to listen wider.
bind = os.environ.get("BIND", f"127.0.0.1:{os.environ.get('PORT', '8000')}")
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("WEB_THREADS", "4"))
timeout = 30

# Logs: one key=value line per record, as in Django (engagement/log_format.py).
# gunicorn's access log would write the raw path (`/api/v1/users/email:…`); the
# pulse.access middleware logs the route pattern instead, so it stays off, and
# its format names no path should someone turn it on.
accesslog = None
access_log_format = "event=gunicorn_access status=%(s)s bytes=%(B)s duration_ms=%(M)s"
logconfig_dict = gunicorn_logconfig(
    exception_messages=environ.Env().bool("LOG_EXCEPTION_MESSAGES", default=False)
)


def pre_request(worker, req):
    """gunicorn's default logs `METHOD /raw/path` at debug level; Pulse logs the route instead."""


# gunicorn 27 opens a control socket shared by every gunicorn of the same user
# on the host; Pulse does not use it.
control_socket_disable = True
