"""gunicorn settings for the web process (gthread workers)."""
import os

# Web processes share a psycopg connection pool on PostgreSQL (config/settings.py).
os.environ.setdefault("PULSE_DB_POOL", "1")

# Loopback by default (behind a reverse proxy); BIND=0.0.0.0:8000 to listen wider.
bind = os.environ.get("BIND", f"127.0.0.1:{os.environ.get('PORT', '8000')}")
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("WEB_THREADS", "4"))
timeout = 30
accesslog = "-"
access_log_format = 'method=%(m)s path="%(U)s" status=%(s)s bytes=%(B)s duration_ms=%(M)s'
# gunicorn 27 opens a control socket shared by every gunicorn of the same user
# on the host; Pulse does not use it.
control_socket_disable = True
