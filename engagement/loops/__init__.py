"""The engagement loops (DESIGN.md §2): item engagement scores, calibrations and tuning.

- `scoring`: the item score, a closed form of `now`, in Python and in SQL;
- `items`: the drain handler that tracks what each user engages with;
- `item_queries`: the per-user answers (top items, stats, ranking);
- `item_jobs`: the daily score refresh and the weekly cleanup;
- `item_people`: merge and erase handlers, the admin panel;
- `calibration`: per-tenant values learned by tuning, their history and rollback;
- `tuning`: the weekly jobs that learn them.
"""
