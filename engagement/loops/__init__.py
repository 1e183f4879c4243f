"""The engagement loops: derived state that acts, inside the engagement app. They reach the
outbox only through the `PULSE_OUTBOX` port (docs/ARCHITECTURE.md §2).

- `lifecycle`: the transition table, `transition_state` and its set-based twin;
- `lifecycle_activity`: the drain handler for `user_activity`;
- `daily_engagement`: the daily job (inactivity, goodbye/help timeouts, reminders);
- `scoring`: the item score, a closed form of `now`, in Python and in SQL;
- `items`: the drain handler that tracks what each user engages with;
- `item_queries`: the per-user answers (top items, stats, ranking);
- `item_jobs`: the daily score refresh and the weekly cleanup;
- `item_people`: merge and erase handlers, the admin panel;
- `calibration`: per-tenant values learned by tuning, their history and rollback;
- `tuning`: the weekly jobs that learn them.
"""
