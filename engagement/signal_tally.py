"""The signal tally recounted from the log: for loads that bypass the triggers (a bulk load
with `DISABLE TRIGGER ALL`) and for checks that the tally is what the log says.

The triggers themselves live in migration 0014_signal_tally; the model and what the tally
means are in `engagement.models.signal_tally`.
"""

from django.db import connection, transaction

LOG_TALLY = """
SELECT user_id, name, min(occurred_at) AS first_at, max(occurred_at) AS last_at, count(*) AS total
FROM engagement_signal {where} GROUP BY user_id, name
"""


def refill() -> int:
    """Replace the tally with a recount of the whole log (one INSERT … SELECT … GROUP BY);
    returns the number of (user, name) pairs."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM engagement_signaltally")
        cursor.execute("INSERT INTO engagement_signaltally (user_id, name, first_at, last_at, total) "
                       + LOG_TALLY.format(where=""))
        return cursor.rowcount


def differences(*, user_modulo: int | None = None) -> int:
    """The number of (user, name) pairs on which the tally and a recount of the log disagree
    (a missing row, a row too many, or another first_at, last_at or total); 0 when exact.
    With `user_modulo`, only users whose id is a multiple of it are compared (a sample)."""
    where, params = ("WHERE user_id %% %s = 0", [user_modulo, user_modulo]) if user_modulo else ("", [])
    tally_where = "WHERE t.user_id %% %s = 0" if user_modulo else ""
    sql = (
        f"SELECT count(*) FROM ({LOG_TALLY.format(where=where)}) l "
        f"FULL OUTER JOIN (SELECT * FROM engagement_signaltally t {tally_where}) t "
        "ON t.user_id = l.user_id AND t.name = l.name "
        "WHERE t.user_id IS NULL OR l.user_id IS NULL OR t.first_at <> l.first_at "
        "OR t.last_at <> l.last_at OR t.total <> l.total"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]
