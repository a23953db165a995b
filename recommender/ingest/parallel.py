"""One source read by several processes, with the outcomes of a read by one.

A registry download is a zip of 100k+ small JSON files (or, from the API, a file of
JSON lines, or a folder). Unpacking and decoding them is GIL-bound Python and most of
a build's read, so with ``n_jobs`` > 1 the source is cut into runs (of members, files
or lines), each read by a worker process with the serial readers' own per-item code
(``member_outcomes``, ``file_outcomes``, ``line_outcomes``); long texts are cut
there too. Records come back as the JSON lines an index stores (decoding one is a few
microseconds, several times cheaper than unpickling the object), or, for a build,
are written by the workers into its spool folder, one file per worker, and come back
as where they are (:class:`~recommender.core.store.RecordLine`): no record then passes
through this process at all. They are yielded in source order: the outcomes, and the
report made from them, are those of the serial read (tested).

A zip's members go to the workers with the runs: a worker reads them from the file
directly and never reads the zip's directory again. The workers are an
:class:`~recommender.infra.processes.OrderedPool`.
"""

from __future__ import annotations

import functools
import itertools
import operator
import os
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

from recommender.core import RecordLine, TrialRecord, decode_record, encode_record
from recommender.infra import OrderedPool
from recommender.ingest import ctgov_json
from recommender.ingest.containers import list_files, open_zip, zip_members
from recommender.ingest.errors import Outcome, RecordError
from recommender.ingest.formats import KINDS, PARALLEL_FORMATS
from recommender.ingest.limits import ReadLimits, cap_texts

# Items per run: large enough that a run's messages cost little beside its reading.
RUN_ITEMS = 1000
RUN_BYTES = 4 << 20  # bytes of JSON lines per run
_BLOCK = 1 << 20  # bytes read at a time when cutting JSON lines into runs


# One outcome as a read keeps it: the item, its record with long texts cut (or why
# there is none), and what was cut.
Prepared = tuple[str, TrialRecord | RecordLine | RecordError, list[str]]
# What a worker sends back: the record as its id and stored line, or, writing to a
# spool, its id, file and span.
_Sent = tuple[str, tuple | RecordError, list[str]]
# A run: the function a worker calls and its arguments.
Run = tuple[Callable[..., list[_Sent]], tuple]


def prepare(outcome: Outcome, limits: ReadLimits) -> Prepared:
    """``outcome`` as a read keeps it (see :data:`Prepared`)."""
    item, result = outcome
    if isinstance(result, RecordError):
        return item, result, []
    record, cut = cap_texts(result, limits.max_text_chars)
    return item, record, cut


def read_runs(
    path: str | os.PathLike,
    fmt: str,
    limits: ReadLimits,
    archive: zipfile.ZipFile | None = None,
    spool: str | os.PathLike | None = None,
) -> Iterator[Run]:
    """The runs a source is read in, in source order (a format of
    :data:`~recommender.ingest.formats.PARALLEL_FORMATS`).

    ``archive`` is the source's zip already open, if it is one (its directory is
    then not read again here). With ``spool`` (a folder), the workers write the
    records' lines there (see :func:`parallel_outcomes`).
    """
    if fmt not in PARALLEL_FORMATS:
        raise ValueError(
            f"{fmt!r} sources are read by one process; expected one of {PARALLEL_FORMATS}"
        )
    spool = None if spool is None else str(spool)
    path = Path(path)
    if fmt == "jsonl":
        for start, stop, first_line in jsonl_runs(path, RUN_BYTES):
            yield _read_lines, (path, limits, spool, start, stop, first_line)
        return
    kinds, container = fmt.rsplit("-", 1)
    readers = [KINDS[kind] for kind in kinds.split("+")]
    if container == "zip":
        # The members go with each run, so a worker never reads the zip's directory;
        # as plain tuples, which pickle ten times faster than ZipInfo objects.
        with open_zip(archive or path) as opened:
            members = [
                [_member_fields(info) for info in zip_members(opened, suffix)]
                for suffix, _, _ in readers
            ]
        for (_, read_member, _), infos in zip(readers, members, strict=True):
            for start in range(0, len(infos), RUN_ITEMS):
                run = infos[start : start + RUN_ITEMS]
                yield _read_members, (path, run, read_member, limits, spool)
    else:
        for suffix, _, read_file in readers:
            files = list_files(path, suffix)
            for start in range(0, len(files), RUN_ITEMS):
                run = files[start : start + RUN_ITEMS]
                yield _read_files, (path, run, read_file, limits, spool)


def several(runs: Iterator[Run]) -> Iterator[Run] | None:
    """``runs`` if there are at least two (worth a pool of processes), else None."""
    first = list(itertools.islice(runs, 2))
    return itertools.chain(first, runs) if len(first) == 2 else None


def parallel_outcomes(
    source: str | os.PathLike, runs: Iterator[Run], n_jobs: int
) -> Iterator[Prepared]:
    """The outcomes of ``runs`` (of :func:`read_runs`), read by ``n_jobs`` processes.

    The same outcomes, in the same order, as the format's serial reader, each as
    :func:`prepare` makes it; but when the runs were made with a spool folder, each
    record as the :class:`~recommender.core.store.RecordLine` saying where its worker
    wrote it.

    Raises
    ------
    SourceError
        As the serial reader would (a worker's error is raised here).
    RuntimeError
        If a worker process dies (killed, out of memory).
    """
    with OrderedPool(n_jobs, f"{source}: a process reading it", stage="read") as pool:
        for sent in pool.results(runs):
            for item, result, cut in sent:
                if not isinstance(result, RecordError):
                    result = decode_record(result[1]) if len(result) == 2 else RecordLine(*result)
                yield item, result, cut


def jsonl_runs(path: Path, run_bytes: int) -> Iterator[tuple[int, int, int]]:
    """``(start, stop, first line number)`` of runs of whole lines of a JSON-lines file,
    each at least ``run_bytes`` long but the last; read a block at a time."""
    with open(path, "rb") as handle:
        start, first_line, offset, newlines = 0, 1, 0, 0
        while block := handle.read(_BLOCK):
            scanned = 0  # newlines before here in the block are counted
            while start + run_bytes - offset < len(block):
                end = block.find(b"\n", max(start + run_bytes - offset, scanned))
                if end < 0:
                    break
                newlines += block.count(b"\n", scanned, end + 1)
                yield start, offset + end + 1, first_line
                start, first_line, scanned = offset + end + 1, first_line + newlines, end + 1
                newlines = 0
            newlines += block.count(b"\n", scanned)
            offset += len(block)
        if offset > start:
            yield start, offset, first_line


# --- in the workers ---------------------------------------------------------------------


def _read_members(path: Path, members: list[tuple], reader, limits, spool) -> list[_Sent]:
    archive = _zip_file(path)
    infos = map(_Member._make, members)
    outcomes = (o for info in infos for o in reader(archive, info, limits))
    return _sent(outcomes, limits, spool)


def _read_files(root: Path, files: list[Path], reader, limits, spool) -> list[_Sent]:
    return _sent((o for file in files for o in reader(root, file, limits)), limits, spool)


def _read_lines(path: Path, limits, spool, start: int, stop: int, first: int) -> list[_Sent]:
    return _sent(ctgov_json.line_outcomes(path, limits, start, stop, first), limits, spool)


def _sent(outcomes: Iterator[Outcome], limits: ReadLimits, spool: str | None) -> list[_Sent]:
    """Each outcome prepared (long texts are cut here, on the worker's core), its
    record as a JSON line: sent, or written to this worker's file in ``spool``."""
    out = None if spool is None else _spool_file(spool)
    sent = []
    for outcome in outcomes:
        item, result, cut = prepare(outcome, limits)
        if not isinstance(result, RecordError):
            line = encode_record(result)
            if out is None:
                result = (result.nct_id, line)  # a tuple pickles fastest
            else:
                start = out.tell()
                out.write(line)
                result = (result.nct_id, out.name, start, start + len(line))
        sent.append((item, result, cut))
    if out is not None:
        out.flush()  # before the caller copies from it
    return sent


@functools.cache
def _spool_file(spool: str):
    # One file per worker process, open for its life (one read of one source).
    return open(os.path.join(spool, f"lines-{os.getpid()}.jsonl"), "ab")


@functools.cache
def _zip_file(path: Path) -> _ZipFileLater:
    # Called in workers only, and kept for the worker's life (one read of one source).
    return _ZipFileLater(path)


class _ZipFileLater:
    """What :func:`~recommender.ingest.containers.read_member` needs of a ZipFile: the open
    file, and ``open`` for the rare member it leaves to zipfile (encrypted, bzip2),
    which makes the ZipFile then; reading its directory takes a second at registry
    size."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fp = open(path, "rb")  # noqa: SIM115 - open for the worker's life

    @functools.cached_property
    def _archive(self) -> zipfile.ZipFile:
        return open_zip(self.path)

    def open(self, info: _Member):
        return self._archive.open(info.zip_info())


class _Member(NamedTuple):
    """What reading a zip member needs of its ZipInfo."""

    filename: str
    orig_filename: str
    header_offset: int
    compress_size: int
    file_size: int
    compress_type: int
    flag_bits: int
    CRC: int

    def zip_info(self) -> zipfile.ZipInfo:
        """The ZipInfo again, for zipfile's own reader."""
        info = zipfile.ZipInfo(self.filename)
        for name, value in zip(self._fields, self, strict=True):
            setattr(info, name, value)
        return info


# A ZipInfo's fields of _Member, in order, as a plain tuple.
_member_fields = operator.attrgetter(*_Member._fields)
