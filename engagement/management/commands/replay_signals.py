import sys

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from engagement.cli import add_now_argument, parse_now, parse_time
from engagement.replay import DEFAULT_BATCH, ReplayError, replay_signals, resolve_handlers, resolve_user


class Command(BaseCommand):
    help = (
        "Run signal handlers again over stored signals, in batches by id, each batch in its own "
        "transaction (a failing signal is isolated and marked failed). Replays processed signals, "
        "or with --failed the failed ones (marking those that now succeed processed). Handlers "
        "see HandlerContext(replay=True). Ends with: replayed=N failed=N batches=N."
    )

    def add_arguments(self, parser):
        add_now_argument(parser)
        parser.add_argument("--since", help="only signals that occurred at or after this ISO time")
        parser.add_argument("--until", help="only signals that occurred before this ISO time")
        parser.add_argument("--user", help="only this user's signals (a user ref: id, ext:, anon:, email:)")
        parser.add_argument("--failed", action="store_true", help="replay failed signals instead")
        parser.add_argument(
            "--handler",
            help="run only this handler: an entry of PULSE_SIGNAL_HANDLERS (dotted path or its "
                 "last part) or any importable dotted path",
        )
        parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH)

    def handle(self, *args, **options):
        batch_size = options["batch_size"]
        if not 1 <= batch_size <= 10_000:
            raise CommandError("--batch-size must be between 1 and 10000")
        since = parse_time(options["since"], "--since") if options["since"] else None
        until = parse_time(options["until"], "--until") if options["until"] else None
        try:
            handlers = resolve_handlers(options["handler"])
            user_id = resolve_user(options["user"]) if options["user"] else None
            with tqdm(desc="replay", unit="signal", file=sys.stderr, leave=False) as bar:

                def progress(done, total):
                    bar.total = total
                    bar.update(done - bar.n)

                result = replay_signals(
                    now=parse_now(options["now"]), since=since, until=until, user_id=user_id,
                    failed_only=options["failed"], handlers=handlers, batch_size=batch_size,
                    progress=progress,
                )
        except ReplayError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(result.line())
