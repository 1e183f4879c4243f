"""How every Redis connection of Pulse is made: ours, RQ's workers and queues, and rqcron's.

redis-py waits forever by default (no socket timeout) and, since 6.0, retries a
failed command 10 times with backoff: against a stalled Redis one call then takes
~11 socket timeouts. Pulse sets connect and socket timeouts everywhere and retries
once, at once, only on a dropped connection (a restarted Redis closes the pooled
sockets), never on a timeout: a retried timeout only doubles the wait, and the
command may already have run.

RQ's worker raises its own connection's socket timeout above its blocking
dequeue (BLPOP, ~7 minutes by default); that is RQ's design and still bounded.
"""

from redis import ConnectionError as RedisConnectionError
from redis.backoff import NoBackoff
from redis.connection import SSLConnection, UnixDomainSocketConnection, parse_url
from redis.retry import Retry


def client_options(socket_timeout: float) -> dict:
    """Keyword arguments for redis.Redis: bounded waits, one retry on a dropped connection."""
    return {
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": socket_timeout,
        "retry": Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
    }


def rq_connection(url: str, socket_timeout: float) -> dict:
    """The connection part of an RQ_QUEUES entry for `url`, with `client_options`.

    django-rq passes no options with a `URL`, so the URL is split into HOST, PORT, …
    and the options go in REDIS_CLIENT_KWARGS (which django-rq hands to redis.Redis).
    Options in the URL's query string (`?health_check_interval=30`) are kept and win.
    """
    parsed = parse_url(url)
    connection_class = parsed.pop("connection_class", None)
    config = {
        "HOST": parsed.pop("host", "localhost"),
        "PORT": parsed.pop("port", 6379),
        "DB": parsed.pop("db", 0),
        "USERNAME": parsed.pop("username", None),
        "PASSWORD": parsed.pop("password", None),
        "SSL": connection_class is SSLConnection,
    }
    if connection_class is UnixDomainSocketConnection:
        parsed["unix_socket_path"] = parsed.pop("path")
    config["REDIS_CLIENT_KWARGS"] = {**client_options(socket_timeout), **parsed}
    return config
