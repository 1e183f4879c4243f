import sys
from contextlib import contextmanager

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from engagement.cli import add_now_argument, parse_now
from engagement.imports import DEFAULT_CHUNK, ImportFileError, import_signals

EXIT_NOTE = (
    "Ends with one line: read=N imported=N duplicates=N rejected=N (and report=PATH when lines "
    "were rejected). Exits non-zero when the file is missing or unreadable, when the import is "
    "interrupted (re-run the same command to resume), or when every line of a non-empty file "
    "was rejected. An empty file imports nothing and succeeds."
)


def add_import_arguments(parser) -> None:
    parser.add_argument("path", help="the file to import")
    add_now_argument(parser)
    parser.add_argument(
        "--report", help="where to write rejected lines (default: PATH.rejected.jsonl)"
    )
    parser.add_argument(
        "--restart", action="store_true",
        help="ignore the checkpoint of an unfinished import of this file and start from line 1 "
             "(lines already imported are still counted as duplicates, never stored twice)",
    )
    parser.add_argument(
        "--chunk-size", type=int, default=DEFAULT_CHUNK,
        help=f"lines per transaction and checkpoint (default {DEFAULT_CHUNK})",
    )


@contextmanager
def progress_bar(label: str):
    """A tqdm bar on stderr, in bytes of the file; yields the importer's progress callback."""
    bar = tqdm(desc=label, unit="B", unit_scale=True, file=sys.stderr, leave=False)

    def update(done: int, total: int) -> None:
        if bar.total != total:
            bar.total = total
        bar.update(done - bar.n)

    try:
        yield update
    finally:
        bar.close()


def run_import_command(command: BaseCommand, importer, options: dict) -> None:
    chunk_size = options["chunk_size"]
    if not 1 <= chunk_size <= 10_000:
        raise CommandError("--chunk-size must be between 1 and 10000")
    now = parse_now(options.get("now"))
    try:
        with progress_bar(options["path"]) as progress:
            summary = importer(
                options["path"], now=now, fmt=options.get("format"), report_path=options["report"],
                restart=options["restart"], chunk_size=chunk_size, progress=progress,
            )
    except ImportFileError as exc:
        raise CommandError(str(exc)) from None
    except Exception as exc:
        raise CommandError(
            f"import interrupted ({type(exc).__name__}: {exc}); the lines before the failing chunk "
            "are committed: run the same command again to resume"
        ) from exc
    command.stdout.write(summary.line())
    if summary.all_rejected:
        raise CommandError(f"every line was rejected; see {summary.run.report_path}")


class Command(BaseCommand):
    help = (
        "Import historical signals from a JSON Lines file: each line is a native signal "
        "(the body POST /api/v1/signals takes for one signal) or a Segment export message "
        "(track, page, screen, identify, group, alias). Imported signals have source=import, no "
        "maximum age and are never real-time. Re-running is a no-op; an interrupted import "
        "resumes after its last committed chunk. " + EXIT_NOTE
    )

    def add_arguments(self, parser):
        add_import_arguments(parser)
        parser.add_argument("--format", choices=["jsonl"], help="the file format (JSON Lines)")

    def handle(self, *args, **options):
        run_import_command(self, import_signals, options)
