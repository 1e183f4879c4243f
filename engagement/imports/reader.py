"""Reading import files defensively: bounded lines, per-line decoding, JSON Lines and CSV.

Nothing a file holds can crash the reader or make it hold more than one
bounded line in memory: a line longer than `MAX_LINE_BYTES` is skipped to its
end and reported, bytes that are not UTF-8 spoil only their own line, JSON
that nests too deeply or holds NaN is a rejected line like any other.
"""

import codecs
import csv
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from ..idempotency import canonical_json
from ..validation import strict_json_loads

MAX_LINE_BYTES = 1024 * 1024
EXCERPT_CHARS = 300
_DRAIN_BYTES = 1024 * 1024


class ImportFileError(Exception):
    """The file as a whole cannot be imported (missing, unreadable, no identifier column …)."""


@dataclass
class Line:
    """One physical line: its text, or why it cannot be read."""

    number: int
    text: str | None
    error: str | None
    excerpt: str


@dataclass
class RawRecord:
    """One record of the input before parsing: a JSON object, a CSV row, or an error."""

    line: int
    end: int
    excerpt: str
    value: object = None
    errors: list[dict] = field(default_factory=list)


def fingerprint(path: Path) -> tuple[int, str]:
    """(size, sha256 of the content): the same bytes anywhere are "the same file"."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as stream:
        while block := stream.read(1024 * 1024):
            digest.update(block)
            size += len(block)
    return size, digest.hexdigest()


def content_key(prefix: str, value) -> str:
    return prefix + hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()


class LineSource:
    """Physical lines of a binary stream, each read with a bounded `readline`."""

    def __init__(self, stream: BinaryIO, max_bytes: int = MAX_LINE_BYTES):
        self.stream = stream
        self.max_bytes = max_bytes
        self.number = 0
        self.position = 0

    def next_line(self) -> Line | None:
        raw = self.stream.readline(self.max_bytes + 1)
        if not raw:
            return None
        self.number += 1
        self.position += len(raw)
        if self.number == 1 and raw.startswith(codecs.BOM_UTF8):
            raw = raw[len(codecs.BOM_UTF8):]
        excerpt = raw[:EXCERPT_CHARS].decode("utf-8", "replace").rstrip("\r\n")
        content = raw.rstrip(b"\n").rstrip(b"\r")
        if len(content) > self.max_bytes or (len(raw) > self.max_bytes and not raw.endswith(b"\n")):
            total = len(raw) + self._drain_rest(raw)
            return Line(self.number, None, f"is too long ({total} bytes; at most {self.max_bytes})",
                        excerpt)
        try:
            return Line(self.number, raw.decode("utf-8"), None, excerpt)
        except UnicodeDecodeError as exc:
            return Line(
                self.number, None,
                f"is not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})", excerpt,
            )

    def _drain_rest(self, raw: bytes) -> int:
        """Skip to the end of an over-long line without holding it; return the bytes skipped."""
        skipped = 0
        while not raw.endswith(b"\n"):
            raw = self.stream.readline(_DRAIN_BYTES)
            if not raw:
                break
            skipped += len(raw)
            self.position += len(raw)
        return skipped

    def skip(self, count: int) -> None:
        """Move past physical lines until `count` have been read (resuming after a checkpoint)."""
        while self.number < count:
            raw = self.stream.readline(_DRAIN_BYTES)
            if not raw:
                return
            self.position += len(raw)
            self._drain_rest(raw)
            self.number += 1


# --- JSON Lines --------------------------------------------------------------


def parse_json_line(text: str) -> tuple[object, list[dict]]:
    """(object, []) or (None, errors) for one line of JSON Lines."""
    try:
        value = strict_json_loads(text)
    except RecursionError:
        return None, [{"field": "(line)", "message": "nests too deeply"}]
    except ValueError as exc:
        return None, [{"field": "(line)", "message": f"is not valid JSON: {exc}"}]
    if not isinstance(value, dict):
        return None, [{"field": "(line)", "message": "must be a JSON object"}]
    try:
        canonical_json(value).encode("utf-8")
    except UnicodeEncodeError:
        return None, [{"field": "(line)", "message": "holds an unpaired surrogate (\\ud800-\\udfff)"}]
    except RecursionError:
        return None, [{"field": "(line)", "message": "nests too deeply"}]
    return value, []


def json_lines(source: LineSource) -> Iterator[RawRecord]:
    """Every non-blank line as a RawRecord holding a dict or its errors."""
    while (line := source.next_line()) is not None:
        if line.error:
            yield RawRecord(line.number, line.number, line.excerpt,
                            errors=[{"field": "(line)", "message": line.error}])
            continue
        if not line.text.strip():
            continue
        value, errors = parse_json_line(line.text)
        yield RawRecord(line.number, line.number, line.excerpt, value=value, errors=errors)


# --- CSV -----------------------------------------------------------------------


class _CsvText:
    """Feeds decoded lines to `csv.reader`; an unreadable line becomes empty and is noted."""

    def __init__(self, source: LineSource):
        self.source = source
        self.problems: dict[int, str] = {}
        self.excerpt: str | None = None

    def start_record(self) -> None:
        self.problems = {}
        self.excerpt = None

    def __iter__(self):
        return self

    def __next__(self) -> str:
        line = self.source.next_line()
        if line is None:
            raise StopIteration
        if self.excerpt is None:
            self.excerpt = line.excerpt
        if line.error:
            self.problems[line.number] = line.error
            return "\n"
        return line.text


def csv_rows(source: LineSource, *, header_done: int = 0) -> tuple[list[str], Iterator[RawRecord]]:
    """(header cells, rows as RawRecords holding lists of cells).

    The header is the first non-blank row. With `header_done`, the lines up to
    that physical line are skipped after the header (resuming a checkpoint).
    """
    text = _CsvText(source)
    reader = csv.reader(text)
    header = None
    while header is None:
        try:
            row = next(reader)
        except StopIteration:
            return [], iter(())
        except csv.Error as exc:
            raise ImportFileError(f"the CSV header is not valid CSV: {exc}") from None
        if text.problems:
            number, problem = next(iter(text.problems.items()))
            raise ImportFileError(f"the CSV header (line {number}) {problem}")
        if any(cell.strip() for cell in row):
            header = row
    if header_done > source.number:
        source.skip(header_done)
    return header, _csv_records(source, reader, text)


def _csv_records(source: LineSource, reader, text: _CsvText) -> Iterator[RawRecord]:
    while True:
        start = source.number + 1
        text.start_record()
        try:
            row = next(reader)
            errors = []
        except StopIteration:
            return
        except csv.Error as exc:
            row, errors = None, [{"field": "(line)", "message": f"is not valid CSV: {exc}"}]
        for number, problem in sorted(text.problems.items()):
            where = "(line)" if number == start else f"(line {number})"
            errors.append({"field": where, "message": problem})
        if errors:
            yield RawRecord(start, source.number, text.excerpt or "", errors=errors)
        elif row and any(cell.strip() for cell in row):
            yield RawRecord(start, source.number, text.excerpt or "", value=row)
