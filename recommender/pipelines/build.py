"""Registry files in, index folder out: the whole offline build as one function."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from joblib import parallel_config

from recommender.core import STORED_NEIGHBOURS, RecordStore
from recommender.index import WriterLock, check_replaceable, save_index
from recommender.infra import fault_point, release_free_memory, utc_now
from recommender.ingest import IngestReport, ReadLimits, SourceError, iter_records, spool_records
from recommender.neighbours import CosineNeighbours
from recommender.pipelines.provenance import describe_source
from recommender.text import DEFAULT_FIELD_GROUPS, FieldGroup, FieldGroupVectorizer


@dataclass
class BuildSummary:
    """What a build did, for the CLI's summary and the index metadata."""

    path: Path
    studies: int
    report: IngestReport
    vocabulary: dict[str, int]
    nonzeros: int
    seconds: dict[str, float] = field(default_factory=dict)


def build_index(
    sources: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    *,
    groups: Sequence[FieldGroup] = DEFAULT_FIELD_GROUPS,
    k: int = STORED_NEIGHBOURS,
    n_jobs: int = -1,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
    scheduler: str | None = None,
    neighbour_method: str = "pruned",
    limits: ReadLimits | None = None,
    wait: bool = False,
) -> BuildSummary:
    """Read registry sources, vectorise, compute every trial's top-``k`` and save.

    Parameters
    ----------
    sources : sequence of path
        Registry files or folders (API v2 JSON zip, folder, JSON lines or pages;
        legacy XML zip or folder), read in order: for a trial present in several,
        the source given last wins.
    out : path
        Index folder, replaced atomically when the build succeeds.
    groups : sequence of FieldGroup
        Field groups, weights and vectoriser settings.
    k : int, default 50
        Neighbours stored per trial.
    n_jobs : int, default -1
        Cores: processes for reading and learning abbreviations, threads for
        vectorising and the neighbour search.
    progress : bool, default False
        Progress on stderr: bars on a terminal, plain stage lines otherwise.
    log : callable, optional
        Receives one line per finished stage.
    scheduler : str, optional
        Address of a Dask scheduler (``tcp://host:8786``): vectorising and the
        neighbour search then run on that cluster's workers, through the same code
        (joblib's Dask backend); the result is identical to a local build.
    neighbour_method : {"pruned", "exact"}, default "pruned"
        How every trial's top-``k`` is found (see :class:`CosineNeighbours`); recorded
        in the metadata. ``"exact"`` is slower but is what ``recommender update``
        computes, so an updated index then equals a rebuild with the same vocabulary.
    limits : ReadLimits, optional
        Largest study file (bytes) and longest text field (characters) read; the
        defaults when None. Recorded in the metadata and the build report, with
        every file refused and every text cut.
    wait : bool, default False
        When another build or update is writing ``out``, wait for it to finish
        (saying so through ``log``) instead of raising :class:`IndexBusyError`.

    Returns
    -------
    BuildSummary

    Raises
    ------
    IndexBusyError
        Another build or update is writing ``out`` (and ``wait`` is False).
    IndexChangedError
        ``out`` was replaced while this build ran, by a writer that ignored the lock;
        this build's index is not served.
    """
    if not sources:
        raise ValueError("at least one source is needed")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    CosineNeighbours(method=neighbour_method)  # a bad method fails before the long read
    check_replaceable(Path(out))  # so does an --out that is not an index
    if scheduler is not None:
        check_scheduler(scheduler)  # and a cluster that cannot be used
    say = log or (lambda _line: None)
    seconds: dict[str, float] = {}
    started = time.perf_counter()

    # One writer at a time (an update made meanwhile would be lost), from before the
    # read to the swap. Records go to disk as they are read, and each pass over them
    # reads them back a run at a time: no stage holds them all as Python objects.
    with WriterLock(out, "build", wait=wait, log=say) as writer, _spool_folder(out) as spool:
        records, report = _read_to_disk(sources, spool, limits or ReadLimits(), progress, n_jobs)
        seconds["read"] = _lap(started, seconds)
        say(f"read {len(records):,} studies ({seconds['read']:.1f} s)")
        fault_point("read")
        if not len(records):
            raise SourceError("the sources hold no readable study; nothing to index")

        with parallel_backend(scheduler):
            vectorizer = FieldGroupVectorizer(groups, n_jobs=n_jobs)
            vectors = vectorizer.fit_transform(records)
            seconds["vectorise"] = _lap(started, seconds)
            if vectors.shape[1] == 0:
                raise NoTermsError(_no_terms_message(len(records), groups))
            say(f"vectorised: {vectors.shape[1]:,} features ({seconds['vectorise']:.1f} s)")
            fault_point("vectorised")
            release_free_memory()

            search = CosineNeighbours(
                method=neighbour_method, prunable=vectorizer.prunable_columns(), n_jobs=n_jobs
            )
            indices, scores = _all_neighbours(search.fit(vectors), vectors, k, progress)
            del search  # its champion postings: the save needs the memory for its own
            release_free_memory()
        seconds["neighbours"] = _lap(started, seconds)
        say(f"neighbours: top {k} of {len(records):,} trials ({seconds['neighbours']:.1f} s)")
        fault_point("neighbours")

        sizes = zip(vectorizer.offsets_[:-1], vectorizer.offsets_[1:], strict=True)
        vocabulary = {
            g.name: int(stop - start) for g, (start, stop) in zip(groups, sizes, strict=True)
        }
        meta = {
            "built_at": utc_now(),
            "sources": [
                {**describe_source(path), **vars(summary)}
                for path, summary in zip(sources, report.sources, strict=True)
            ],
            "ingest": {
                "skipped": len(report.skipped),
                "ignored": len(report.ignored),
                "truncated": len(report.truncated),
                "replaced": report.replaced,
                "limits": vars(report.limits),
            },
            "neighbour_method": neighbour_method,
        }
        path = save_index(
            out,
            records=records,
            vectorizer=vectorizer,
            vectors=vectors,
            neighbour_indices=indices,
            neighbour_scores=scores,
            meta={**meta, "seconds": seconds},
            report=_report_dict(report),
            guard=writer.check_unchanged,
        )
        seconds["save"] = _lap(started, seconds)
        say(f"saved to {path} ({seconds['save']:.1f} s)")
        return BuildSummary(path, len(records), report, vocabulary, int(vectors.nnz), seconds)


class NoTermsError(SourceError):
    """The studies read share no term that ``min_df`` keeps: there is nothing to compare."""


def _no_terms_message(n_studies: int, groups: Sequence[FieldGroup]) -> str:
    min_dfs = sorted({g.min_df for g in groups}, key=float)
    return (
        f"too few studies to index: {n_studies:,} read, and no term is in at least "
        f"min_df={'/'.join(map(str, min_dfs))} of them, so no field group keeps a term; "
        "give more studies (a whole registry download, or a folder of related trials)"
    )


def _read_to_disk(
    sources: Sequence[str | os.PathLike],
    spool: Path,
    limits: ReadLimits,
    progress: bool,
    n_jobs: int,
) -> tuple[RecordStore, IngestReport]:
    """The sources' records, one per NCT id and sorted, written into ``spool``."""
    report = IngestReport(limits=limits)
    records, report.replaced = spool_records(
        iter_records(sources, report, progress=progress, n_jobs=n_jobs, spool=spool), spool
    )
    report.studies = len(records)
    return records, report


@contextlib.contextmanager
def _spool_folder(out: str | os.PathLike) -> Iterator[Path]:
    """A scratch folder beside ``out`` for the records read, removed when the build ends.

    Named ``.<out>.records-<pid>-<ns>``: if the build is killed, the next build or update
    of ``out`` removes it once that pid is provably gone (see :mod:`recommender.index.versions`).
    """
    final = Path(out)
    final.parent.mkdir(parents=True, exist_ok=True)
    folder = final.parent / f".{final.name}.records-{os.getpid()}-{time.time_ns()}"
    folder.mkdir()
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class SchedulerError(RuntimeError):
    """The Dask scheduler given cannot be used: dask is not installed, the address is
    malformed, or no scheduler answers there."""


def check_scheduler(scheduler: str) -> None:
    """Connect to the Dask scheduler at ``scheduler`` once, before a build reads its
    sources (minutes at the registry's size), so that a missing ``dask`` extra, a
    mistyped address or a cluster that is down fails at once, with what to do.

    Raises
    ------
    SchedulerError
    """
    try:
        from dask.distributed import Client
    except ImportError:
        raise SchedulerError(
            "a Dask scheduler was given but dask.distributed is not installed: "
            "pip install 'trial-recommender[dask]' (or `pip install -e '.[dask]'`)"
        ) from None
    try:
        with Client(scheduler):  # waits as long as dask's connect timeout (30 s)
            pass
    except ValueError as exc:
        raise SchedulerError(f"{scheduler!r} is not a Dask scheduler address: {exc}") from None
    except OSError as exc:
        raise SchedulerError(f"no Dask scheduler answers at {scheduler}: {exc}") from None


@contextlib.contextmanager
def parallel_backend(scheduler: str | None) -> Iterator[None]:
    """Run joblib work on the Dask cluster at ``scheduler``, or locally when None."""
    if scheduler is None:
        yield
        return
    from dask.distributed import Client  # installed: check_scheduler ran first

    with Client(scheduler) as client, parallel_config(backend="dask"), warnings.catch_warnings():
        del client  # joblib finds the active client itself
        # The texts must reach the workers once whichever way they are sent; Dask's
        # advice to load them on the workers does not apply to records read here.
        warnings.filterwarnings("ignore", message="Sending large graph", category=UserWarning)
        yield


def _lap(started: float, seconds: dict[str, float]) -> float:
    return round(time.perf_counter() - started - sum(seconds.values()), 3)


def _all_neighbours(search: CosineNeighbours, vectors, k: int, progress: bool):
    if not progress:
        return search.all_kneighbors(vectors, k)
    from recommender.infra import progress as show_progress

    with show_progress(total=vectors.shape[0], desc="neighbours", unit="trials") as bar:
        return search.all_kneighbors(vectors, k, progress=bar.update)


def _report_dict(report: IngestReport) -> dict:
    return {
        "sources": [vars(s) for s in report.sources],
        "replaced": report.replaced,
        "skipped": [vars(s) for s in report.skipped],
        "ignored": [vars(s) for s in report.ignored],
        "limits": vars(report.limits),
        "truncated": [vars(s) for s in report.truncated],
    }
