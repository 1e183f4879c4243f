"""Feature groups for the set-based rebuild tests: one without an SQL form, one whose SQL fails
(imported only through settings in tests)."""

from profiles.registry import NUMERIC, single_feature, sql_for


@single_feature("python_only_seven", NUMERIC, "seven for everyone, computed in Python only")
def python_only(user_ids, now):
    return {uid: 7 for uid in user_ids}


@single_feature("broken_in_sql", NUMERIC, "a Python compute, and an SQL form that fails")
def broken(user_ids, now):
    return {}


@sql_for(broken)
def broken_sql(users, now):
    return "SELECT user_id FROM no_such_table_anywhere", []
