from django.core.management.base import BaseCommand, CommandError

from engagement.cli import add_now_argument, parse_now
from engagement.pipeline import process_signals


class Command(BaseCommand):
    help = "Drain pending signals through every handler now (what the signals worker does)."

    def add_arguments(self, parser):
        add_now_argument(parser)
        parser.add_argument("--batch-size", type=int)
        parser.add_argument("--max-batches", type=int)

    def handle(self, *args, now=None, batch_size=None, max_batches=None, **options):
        if batch_size is not None and not 1 <= batch_size <= 10_000:
            raise CommandError("--batch-size must be between 1 and 10000")
        result = process_signals(
            now=parse_now(now) if now else None, batch_size=batch_size, max_batches=max_batches,
            on_batch=self._progress,
        )
        self.stderr.write("")
        self.stdout.write(
            f"batches={result.batches} processed={result.processed} failed={result.failed}"
            f" retries={result.retries}"
        )
        if result.stalled:
            raise CommandError(
                "stopped on a database error that persisted through the retries; "
                "the remaining signals are still pending (see the pulse.drain log)"
            )

    def _progress(self, result):
        """A running count on stderr; the summary line stays alone on stdout."""
        self.stderr.write(f"\rdrained {result.processed + result.failed:,} signals", ending="")
        self.stderr.flush()
