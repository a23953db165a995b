"""Read ClinicalTrials.gov registry files into :class:`~recommender.core.TrialRecord` s.

Entry points:

* :func:`read_records` reads several sources in order and keeps one record per NCT
  id, the one read last (so a hand-curated folder listed last overrides the bulk
  download);
* :func:`iter_source` streams the records of one source;
* :func:`detect_format` says how a path will be read;
* :func:`extract_sources` lists an extract folder's sources in build order.

Formats, by path: see :mod:`recommender.ingest.formats`.

A JSON document (file, member, line) may hold a study, an API response page
``{"studies": [...]}`` or a list of studies. In folders and zips only ``.json`` and
``.xml`` files are looked at: other files (``README.md``, ``*.page.txt``) are not
registry data by name and are passed over without a report. A ``.json`` or
``.xml`` file that is plainly not a study (a label file such as
``expected_related.json``: a JSON object without any of a study's sections, or an
XML root other than ``<clinical_study>``, in a file not named ``NCT<8 digits>``) is
listed in ``IngestReport.ignored``: nothing was lost. Every other file that does not
yield a study *is* reported as skipped, as is every bad line, member or record: a
:class:`SkippedItem` with its name and a one-line reason. Nothing is passed over
silently and one bad item never stops a read. Only a source that cannot be read at
all raises :class:`SourceError`.
"""

from __future__ import annotations

import contextlib
import os
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from recommender.core import RecordLine, TrialRecord
from recommender.infra import progress as show_progress
from recommender.infra import worker_count
from recommender.ingest.containers import open_zip, zip_members
from recommender.ingest.errors import NotAStudyError, RecordError, one_line
from recommender.ingest.formats import (
    PARALLEL_FORMATS,
    READERS,
    PathLike,
    Readable,
    detect_format,
    zip_format,
)
from recommender.ingest.limits import DEFAULT_LIMITS, ReadLimits
from recommender.ingest.parallel import Prepared, parallel_outcomes, prepare, read_runs, several
from recommender.ingest.report import IngestReport, SkippedItem, SourceSummary


def _expected_items(path: Readable, fmt: str) -> int | None:
    """How many items a source will roughly yield, for the progress bar's total."""
    suffixes = tuple(f".{kind}" for kind in fmt.rsplit("-", 1)[0].split("+"))  # json+xml-dir
    if fmt.endswith("-zip"):
        with open_zip(path) as archive:
            return sum(sum(1 for _ in zip_members(archive, s)) for s in suffixes)
    if fmt.endswith("-dir"):
        files = (p for p in Path(path).rglob("*") if p.suffix.lower() in suffixes)
        return sum(1 for p in files if p.is_file())
    return None


def _outcomes(
    path: PathLike,
    readable: Readable,
    fmt: str,
    limits: ReadLimits,
    progress: bool,
    n_jobs: int,
    spool: PathLike | None = None,
) -> Iterator[Prepared]:
    """Every outcome of a source, prepared (see :func:`~recommender.ingest.parallel.prepare`)
    and counted on stderr when ``progress`` (a bar on a terminal); read by ``n_jobs``
    processes when the source is large enough to share out."""
    runs = None
    if n_jobs > 1 and fmt in PARALLEL_FORMATS:
        archive = readable if isinstance(readable, zipfile.ZipFile) else None
        runs = several(read_runs(path, fmt, limits, archive, spool))
    if runs is not None:
        outcomes = parallel_outcomes(path, runs, n_jobs)
    else:
        outcomes = (
            prepare(outcome, limits)
            for reader in READERS[fmt]
            for outcome in reader(readable, limits)
        )
    if not progress:
        return outcomes
    total = _expected_items(readable, fmt)
    return iter(show_progress(outcomes, total=total, desc=Path(path).name, unit="items"))


def _read_source(
    path: PathLike,
    fmt: str,
    report: IngestReport,
    progress: bool,
    readable: Readable = None,
    n_jobs: int = 1,
    spool: PathLike | None = None,
) -> Iterator[TrialRecord | RecordLine]:
    """Yield a source's records, recording its summary and skips in ``report``.

    ``readable`` is the source's zip already open, if it is one (else ``path``).
    """
    summary = SourceSummary(path=str(path), format=fmt)
    report.sources.append(summary)
    limits = report.limits
    outcomes = _outcomes(path, readable or path, fmt, limits, progress, n_jobs, spool)
    for item, result, cut in outcomes:
        if isinstance(result, NotAStudyError):
            summary.ignored += 1
            report.ignored.append(SkippedItem(str(path), item, one_line(result)))
        elif isinstance(result, RecordError):
            summary.skipped += 1
            report.skipped.append(SkippedItem(str(path), item, one_line(result)))
        else:
            summary.read += 1
            if cut:
                reason = (
                    f"{result.nct_id}: cut to {limits.max_text_chars:,} characters "
                    f"(--max-text-chars): {', '.join(cut)}"
                )
                report.truncated.append(SkippedItem(str(path), item, one_line(reason)))
            yield result


def iter_source(
    path: PathLike, report: IngestReport, *, progress: bool = False
) -> Iterator[TrialRecord]:
    """Stream the records of one source, in source order, duplicates included.

    Parameters
    ----------
    path
        A registry file or folder (see :func:`detect_format`).
    report
        Receives this source's :class:`SourceSummary` and its :class:`SkippedItem` s;
        its ``limits`` are the ones applied.
    progress
        Show progress on stderr: a bar on a terminal, plain lines otherwise.

    Yields
    ------
    TrialRecord
        Each readable study; unreadable items are appended to ``report.skipped``.

    Raises
    ------
    SourceError
        If the source cannot be read at all (see :func:`detect_format`).
    """
    yield from _read_source(path, detect_format(path), report, progress)


def read_records(
    sources: Sequence[PathLike] | PathLike,
    *,
    progress: bool = False,
    limits: ReadLimits = DEFAULT_LIMITS,
    n_jobs: int = 1,
) -> tuple[list[TrialRecord], IngestReport]:
    """Read registry sources in order into one record per NCT id.

    Parameters
    ----------
    sources
        Files or folders (see :func:`detect_format`), read in the given order; a
        single path is accepted too.
    progress
        Show progress per source on stderr: a bar on a terminal, plain lines otherwise.
    limits
        Largest study file and longest text (see :class:`ReadLimits`): a larger
        file is skipped unread, a longer text cut; both are listed in the report.
    n_jobs
        Processes reading a zip, folder or JSON-lines source side by side (-1: one per
        core); the result is the same as with one.

    Returns
    -------
    records : list of TrialRecord
        One record per NCT id, the one read last (across and within sources),
        sorted by NCT id.
    report : IngestReport
        Per-source counts, every skipped, ignored and cut item with its reason,
        the number of records ``replaced`` by a later one and of ``studies`` kept.

    Raises
    ------
    SourceError
        If any source cannot be read at all; every source is checked before any
        is read, so a typo in the last one fails fast.
    """
    report = IngestReport(limits=limits)
    kept: dict[str, TrialRecord] = {}
    for record in iter_records(sources, report, progress=progress, n_jobs=n_jobs):
        if record.nct_id in kept:
            report.replaced += 1
        kept[record.nct_id] = record
    report.studies = len(kept)
    return sorted(kept.values(), key=lambda record: record.nct_id), report


def iter_records(
    sources: Sequence[PathLike] | PathLike,
    report: IngestReport,
    *,
    progress: bool = False,
    n_jobs: int = 1,
    spool: PathLike | None = None,
) -> Iterator[TrialRecord | RecordLine]:
    """Every readable record of ``sources`` in read order, duplicates included.

    What :func:`read_records` reads, one record at a time (a build streams them to
    disk, :func:`recommender.ingest.spool.spool_records`). Per-source counts and skipped
    items are added to ``report`` as reading goes, under ``report.limits``;
    ``replaced`` and ``studies`` are left to the caller, which decides which copy of
    a trial it keeps. ``n_jobs`` processes (-1: one per core) read each zip, folder
    or JSON-lines source large enough to share out, with the same result as one
    (:mod:`recommender.ingest.parallel`). With ``spool`` (a folder, for
    :func:`~recommender.ingest.spool.spool_records`), those processes write the records
    they read there, and these come as :class:`~recommender.core.store.RecordLine`
    (where each line is) instead of TrialRecords; the others are TrialRecords.

    Raises
    ------
    SourceError
        Before the first record, if any source cannot be read at all.
    """
    if isinstance(sources, str | os.PathLike):
        sources = [sources]
    with contextlib.ExitStack() as open_archives:
        # Every source is checked before any is read; a zip stays open from its
        # check to its reading, so its directory is read once.
        opened = [_open_source(source, open_archives) for source in sources]
        workers = worker_count(n_jobs)
        for source, (fmt, readable) in zip(sources, opened, strict=True):
            yield from _read_source(source, fmt, report, progress, readable, workers, spool)


def _open_source(source: PathLike, stack: contextlib.ExitStack) -> tuple[str, Readable]:
    """A source's format, and its zip opened on ``stack`` if it is one."""
    path = Path(source)
    if path.suffix.lower() == ".zip" and path.is_file():
        archive = stack.enter_context(open_zip(path))
        return zip_format(path, archive), archive
    return detect_format(path), None


def extract_sources(folder: PathLike) -> list[Path]:
    """The sources of a registry extract folder laid out as ``../shared/data``, in the
    order to read them (the ``make serve`` build's order).

    The bulk JSON download first, then any legacy XML download (``AllPublicXML*.zip``:
    its records carry the collaborators, officials and sites the JSON extract lacks,
    and one record per id survives, the later source's), then the reference trials of
    ``seed-cluster/`` if the folder has them.

    Parameters
    ----------
    folder : path
        Holds ``ctg-studies.json.zip``.

    Returns
    -------
    list of Path
    """
    folder = Path(folder)
    sources = [folder / "ctg-studies.json.zip", *sorted(folder.glob("AllPublicXML*.zip"))]
    seeds = folder / "seed-cluster"
    return [*sources, seeds] if seeds.is_dir() else sources
