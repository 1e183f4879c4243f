"""Running an import over a file: chunks, the `ImportRun` checkpoint and the rejection report.

Each chunk is parsed outside any transaction, then stored together with the
checkpoint that counts it in ONE transaction: after a crash the checkpoint
names exactly the lines whose effects are committed, and a re-run of the same
file (same size and sha256) resumes after them. The rejection report is cut
back to the size the checkpoint recorded, so no rejection is reported twice.
"""

import json
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from .. import validation as v
from ..models import ImportRun
from .apply import ChunkOutcome, apply_items
from .reader import ImportFileError, LineSource, RawRecord, fingerprint

log = logging.getLogger("pulse.imports")
Status = ImportRun.Status
DEFAULT_CHUNK = 1000

# (source, lines already done) -> records; may raise ImportFileError (a bad CSV header).
RecordsFactory = Callable[[LineSource, int], Iterator[RawRecord]]
Progress = Callable[[int, int], None]


@dataclass
class ImportSummary:
    run: ImportRun
    resumed_after_line: int = 0

    @property
    def all_rejected(self) -> bool:
        return self.run.read > 0 and self.run.imported + self.run.duplicates == 0

    def line(self) -> str:
        run = self.run
        text = (
            f"read={run.read} imported={run.imported} duplicates={run.duplicates} "
            f"rejected={run.rejected}"
        )
        if self.resumed_after_line:
            text += f" resumed_after_line={self.resumed_after_line}"
        if run.rejected:
            text += f" report={run.report_path}"
        return text


class Report:
    """Rejected lines as JSON Lines: `{"line": 12, "errors": [...], "excerpt": "..."}`."""

    def __init__(self, path: Path, committed: int):
        self.path = path
        self.committed = committed
        self.size = committed
        self._file = None
        if committed == 0:
            path.unlink(missing_ok=True)  # a stale report of an earlier run
        elif path.exists():
            os.truncate(path, committed)
        else:
            self.committed = self.size = 0

    def write(self, record: RawRecord, errors: list[dict]) -> None:
        if self._file is None:
            self._file = self.path.open("ab")
        entry = {"line": record.line, "errors": errors, "excerpt": record.excerpt}
        data = (json.dumps(entry) + "\n").encode("utf-8")
        self._file.write(data)
        self.size += len(data)

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def commit(self) -> None:
        self.committed = self.size

    def rollback(self) -> None:
        """Forget what the failed chunk wrote."""
        if self._file is not None:
            self._file.flush()
            self._file.truncate(self.committed)
            self._file.seek(self.committed)
        self.size = self.committed

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def run_import(
    *,
    kind: str,
    fmt: str,
    path: str | Path,
    records: RecordsFactory,
    parse: Callable,
    now: datetime,
    report_path: str | Path | None = None,
    restart: bool = False,
    chunk_size: int = DEFAULT_CHUNK,
    progress: Progress | None = None,
) -> ImportSummary:
    path = Path(path)
    if not path.is_file():
        raise ImportFileError(f"{path}: no such file")
    try:
        size, digest = fingerprint(path)
        stream = path.open("rb")
    except OSError as exc:
        raise ImportFileError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    progress = progress or (lambda done, total: None)
    with stream:
        previous = _unfinished(kind, fmt, digest, restart)
        source = LineSource(stream)
        start_line = previous.lines_done if previous else 0
        chunks = _chunks(records(source, start_line), chunk_size)
        run = previous or ImportRun(
            kind=kind, format=fmt, fingerprint=digest, size=size, started_at=timezone.now(),
        )
        run.path = str(path)
        if report_path or not run.report_path:
            run.report_path = str(report_path or f"{path}.rejected.jsonl")
        run.status, run.error, run.finished_at = Status.RUNNING, "", None
        run.updated_at = timezone.now()
        run.save()
        log.info(
            "event=import_started run_id=%d kind=%s format=%s resume_after_line=%d size=%d",
            run.pk, kind, fmt, start_line, size,
        )
        report = Report(Path(run.report_path), run.report_bytes if previous else 0)
        progress(source.position, size)
        try:
            for chunk in chunks:
                _commit_chunk(run, chunk, parse, report, now)
                progress(source.position, size)
        except BaseException as exc:
            report.rollback()
            report.close()
            _mark_failed(run, exc)
            raise
        report.close()
    run.status, run.finished_at = Status.SUCCEEDED, timezone.now()
    run.updated_at = run.finished_at
    run.save(update_fields=["status", "finished_at", "updated_at"])
    log.info(
        "event=import_finished run_id=%d kind=%s read=%d imported=%d duplicates=%d rejected=%d",
        run.pk, kind, run.read, run.imported, run.duplicates, run.rejected,
    )
    return ImportSummary(run=run, resumed_after_line=start_line)


def _unfinished(kind: str, fmt: str, digest: str, restart: bool) -> ImportRun | None:
    unfinished = ImportRun.objects.filter(
        kind=kind, format=fmt, fingerprint=digest, status__in=[Status.RUNNING, Status.FAILED]
    )
    if restart:
        unfinished.update(status=Status.ABANDONED, updated_at=timezone.now())
        return None
    return unfinished.order_by("-pk").first()


def _chunks(records: Iterator[RawRecord], size: int) -> Iterator[list[RawRecord]]:
    while chunk := list(islice(records, size)):
        yield chunk


def _commit_chunk(run: ImportRun, chunk: list[RawRecord], parse, report: Report, now) -> None:
    rejected: list[tuple[RawRecord, list[dict]]] = []
    pairs = []
    for record in chunk:
        if record.errors:
            rejected.append((record, record.errors))
            continue
        try:
            pairs.append((record, parse(record.value, now=now)))
        except v.Invalid as exc:
            rejected.append((record, exc.errors))
    with transaction.atomic():
        outcome: ChunkOutcome = apply_items(pairs, now=now)
        rejected.extend(outcome.rejected)
        for record, errors in sorted(rejected, key=lambda r: r[0].line):
            report.write(record, errors)
        report.flush()
        ImportRun.objects.filter(pk=run.pk).update(
            lines_done=chunk[-1].end,
            read=run.read + len(chunk),
            imported=run.imported + outcome.imported,
            duplicates=run.duplicates + outcome.duplicates,
            rejected=run.rejected + len(rejected),
            chunks=run.chunks + 1,
            report_bytes=report.size,
            updated_at=timezone.now(),
        )
    run.refresh_from_db()
    report.commit()
    log.info(
        "event=import_chunk run_id=%d lines_done=%d imported=%d duplicates=%d rejected=%d",
        run.pk, run.lines_done, outcome.imported, outcome.duplicates, len(rejected),
    )


def _mark_failed(run: ImportRun, exc: BaseException) -> None:
    error = f"{type(exc).__name__}: {exc}"[:2000]
    try:
        ImportRun.objects.filter(pk=run.pk).update(
            status=Status.FAILED, error=error, updated_at=timezone.now()
        )
        run.refresh_from_db()
    except Exception:  # noqa: BLE001 - the database itself may be what failed
        log.exception("event=import_checkpoint_unwritable run_id=%d", run.pk)
    log.warning(
        "event=import_failed run_id=%d lines_done=%d error_type=%s",
        run.pk, run.lines_done, type(exc).__name__,
    )
