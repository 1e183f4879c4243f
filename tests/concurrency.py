"""Running a piece of work in several threads at once, for the PostgreSQL race tests."""

import threading

from django.db import connection


def in_threads(work, count: int = 2, *, timeout: float = 30) -> list[Exception]:
    """Run `work(index)` in `count` threads, each on its own database connection (closed after);
    the exceptions they raised. The work places its own `threading.Barrier` where the race
    must start (before a claim, inside a transaction …)."""
    errors: list[Exception] = []

    def run(index):
        try:
            work(index)
        except Exception as exc:  # noqa: BLE001 - returned to the test, which asserts on it
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    return errors
