"""Backfilling Pulse from history: signal files and user files.

`import_signals(path)` reads JSON Lines, each line a native signal or a
Segment export message; `import_users(path)` reads a CSV or JSON Lines of
identify calls. Both go through the same validation and identity resolution
as the API, in chunks, with `source=import` (no maximum age, never
real-time), idempotency keys in the namespace of the line's shape or derived
from its content (a re-run stores nothing new; see `formats`) and an
`ImportRun` checkpoint (an interrupted import resumes). Rejected lines go to
a report file with their line numbers; the lines beside them are stored.
"""

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from ..models import ImportRun
from . import formats
from .reader import ImportFileError, LineSource, RawRecord, csv_rows, json_lines
from .runner import DEFAULT_CHUNK, ImportSummary, Progress, run_import

__all__ = [
    "DEFAULT_CHUNK",
    "FORMATS",
    "ImportFileError",
    "ImportSummary",
    "detect_format",
    "import_signals",
    "import_users",
]

FORMATS = ("csv", "jsonl")
EXTENSIONS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}


def detect_format(path: str | Path, given: str | None = None) -> str:
    if given:
        if given not in FORMATS:
            raise ImportFileError(f"unknown format {given!r}: use one of {', '.join(FORMATS)}")
        return given
    fmt = EXTENSIONS.get(Path(path).suffix.lower())
    if fmt is None:
        raise ImportFileError(
            f"cannot tell the format of {path} from its extension; pass --format csv or jsonl"
        )
    return fmt


def import_signals(
    path: str | Path,
    *,
    now: datetime,
    fmt: str | None = None,
    report_path: str | Path | None = None,
    restart: bool = False,
    chunk_size: int = DEFAULT_CHUNK,
    progress: Progress | None = None,
) -> ImportSummary:
    """Import a JSON Lines file of native signals and/or Segment export messages."""
    fmt = fmt or "jsonl"
    if fmt != "jsonl":
        raise ImportFileError("signals are imported from JSON Lines (--format jsonl)")
    return run_import(
        kind=ImportRun.Kind.SIGNALS, fmt=fmt, path=path, records=_json_records,
        parse=formats.parse_signal_line, now=now, report_path=report_path, restart=restart,
        chunk_size=chunk_size, progress=progress,
    )


def import_users(
    path: str | Path,
    *,
    now: datetime,
    fmt: str | None = None,
    report_path: str | Path | None = None,
    restart: bool = False,
    chunk_size: int = DEFAULT_CHUNK,
    progress: Progress | None = None,
) -> ImportSummary:
    """Import users from a CSV (one column per field) or JSON Lines (`POST /api/v1/users` bodies)."""
    fmt = detect_format(path, fmt)
    if fmt == "csv":
        records, parse = _csv_records, _parse_csv_user
    else:
        records, parse = _json_records, _parse_json_user
    return run_import(
        kind=ImportRun.Kind.USERS, fmt=fmt, path=path, records=records, parse=parse, now=now,
        report_path=report_path, restart=restart, chunk_size=chunk_size, progress=progress,
    )


def _json_records(source: LineSource, lines_done: int) -> Iterator[RawRecord]:
    head = source.stream.read(4096)
    source.stream.seek(0)
    first = next((line.strip() for line in head.lstrip(b"\xef\xbb\xbf").splitlines() if line.strip()), b"")
    if first == b"[" or first.startswith(b"[{"):
        raise ImportFileError(
            "this looks like a JSON array; JSON Lines holds one object per line"
        )
    source.skip(lines_done)
    return json_lines(source)


def _csv_records(source: LineSource, lines_done: int) -> Iterator[RawRecord]:
    """Reads and checks the header now (a bad header fails the command before any work)."""
    header, rows = csv_rows(source, header_done=lines_done)
    if not header:
        return iter(())
    try:
        columns = formats.csv_columns(header)
    except formats.CsvHeaderError as exc:
        raise ImportFileError(str(exc)) from None
    return _with_columns(columns, rows)


def _with_columns(columns, rows: Iterator[RawRecord]) -> Iterator[RawRecord]:
    for row in rows:
        if not row.errors:
            row.value = (columns, row.value)
        yield row


def _parse_csv_user(value, *, now):
    columns, cells = value
    return formats.parse_user_object(formats.csv_row_object(columns, cells))


def _parse_json_user(value, *, now):
    return formats.parse_user_object(value)
