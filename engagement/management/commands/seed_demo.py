import logging
import sys
from functools import partial

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from engagement.cli import add_now_argument, parse_now
from engagement.demo import seed_demo
from engagement.identity import IdentityConflict

MAX_USERS = 1_000_000
MAX_DAYS = 3650


class Command(BaseCommand):
    help = (
        "Create demo tenants and users with DAYS days of believable activity, through the real "
        "identify/group/ingest functions, then drain the signal log. Deterministic with --seed."
    )

    def add_arguments(self, parser):
        parser.add_argument("--users", type=int, required=True, help="how many users (at least 1)")
        parser.add_argument(
            "--days", type=int, default=30, help="days of history before --now (0: users only); default 30"
        )
        parser.add_argument("--seed", type=int, default=1, help="random seed; default 1")
        add_now_argument(parser)

    def handle(self, *args, users, days, seed, now=None, **options):
        if users is None or not 1 <= users <= MAX_USERS:
            raise CommandError(f"--users must be between 1 and {MAX_USERS:,}; got {users}")
        if days is None or not 0 <= days <= MAX_DAYS:
            raise CommandError(f"--days must be between 0 and {MAX_DAYS}; got {days}")
        verbosity = options["verbosity"]
        bar = partial(tqdm, file=sys.stderr, disable=verbosity == 0, dynamic_ncols=True)
        # The drain logs every batch; below -v 2 the bars say it better.
        drain_log = logging.getLogger("pulse.drain")
        level = drain_log.level
        if verbosity < 2:
            drain_log.setLevel(logging.WARNING)
        try:
            result = seed_demo(users=users, days=days, seed=seed, now=parse_now(now), progress=bar)
        except IdentityConflict as exc:
            raise CommandError(
                f"the demo users clash with users already in this database ({exc}); "
                "use another --seed or an empty database"
            ) from None
        finally:
            drain_log.setLevel(level)
        self.stdout.write(result.summary())
