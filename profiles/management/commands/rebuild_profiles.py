"""`manage.py rebuild_profiles`: recompute stored profile values of every live user."""

import sys
import time

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from engagement.cli import add_now_argument, parse_now
from engagement.models import EndUser
from profiles.refresh import DEFAULT_BATCH, rebuild
from profiles.registry import UnknownFeature, select


def positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if not 1 <= number <= 100_000:
        raise CommandError(f"--batch-size: {value!r} is not a whole number between 1 and 100000")
    return number


class Command(BaseCommand):
    help = ("Recompute the profile features of every live user (or only the missing and expired "
            "values with --stale-only), in chunks; shows a progress bar and ends with a summary.")

    def add_arguments(self, parser):
        parser.add_argument("--feature", action="append", metavar="NAME",
                            help="only this feature (repeat for several); default: all")
        parser.add_argument("--stale-only", action="store_true",
                            help="recompute only missing or expired values")
        parser.add_argument("--batch-size", default=str(DEFAULT_BATCH), help="users per chunk")
        add_now_argument(parser)

    def handle(self, *args, feature=None, stale_only=False, batch_size=None, now=None, **options):
        size = positive(batch_size)
        when = parse_now(now)
        try:
            features = select(feature)
        except UnknownFeature as exc:
            raise CommandError(f"--feature: unknown feature {exc.args[0]}") from None
        users = EndUser.objects.filter(deleted_at__isnull=True)
        total = users.count()
        started = time.monotonic()
        with tqdm(total=total, unit="users", disable=options.get("verbosity", 1) == 0,
                  file=sys.stderr) as bar:
            result = rebuild(users, when, features=[f.name for f in features], stale_only=stale_only,
                             batch_size=size, progress=lambda done: bar.update(done.users))
        self.stdout.write(
            f"rebuild_profiles users={result.users} features={len(features)} computed={result.computed} "
            f"written={result.written} refused={result.refused} failed_groups={len(result.failed_groups)} "
            f"stale_only={str(stale_only).lower()} now={when.isoformat()} "
            f"duration_ms={int((time.monotonic() - started) * 1000)}"
        )
        if result.failed_groups:
            raise CommandError(f"some feature groups failed: {', '.join(result.failed_groups)}")
