"""Bring an index up to date with newer registry records, without a full rebuild.

The vocabulary and IDF of the last full build are kept: new and changed records are
vectorised with them, so every other trial's vector stays as it was. Then only the
neighbour lists that can change are touched:

* a new trial, or one whose text (hence vector) changed, gets an exact search
  against all trials;
* a trial whose stored list held a changed or removed trial, or which a new or
  changed trial now beats the list's k-th entry for, is *merged*: its list's
  surviving entries and those newcomers are scored exactly and the best ``k`` kept.
  Every trial outside the list scored no more than the old k-th, so the merge is the
  true top-``k`` whenever its k-th entry still scores at least that much (or the old
  list was not full, which means nothing else scored above zero). Otherwise a trial
  fell out and its replacement may be anywhere: that list gets an exact search;
* every other list is carried over as it is (its positions renumbered).

A change of status or dates alone leaves the vector as it was and moves nothing.
Scores are computed with the same compiled kernels as ``build``, so the lists equal
those of an exact (``neighbour_method="exact"``) rebuild with the same vocabulary,
up to the order of exactly tied scores at the k-th place.

The stages: :mod:`~recommender.pipelines.update.changes` (what differs),
:mod:`~recommender.pipelines.update.vectors` (the new matrix),
:mod:`recommender.neighbours.repair` (the lists) and
:mod:`~recommender.pipelines.update.drift` (when to rebuild instead); then the index
is saved as a new version, its unchanged files hard-linked from the old one.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from recommender.index import (
    TrialIndex,
    WriterLock,
    read_meta,
    resolve_index_folder,
    save_index,
)
from recommender.infra import utc_now
from recommender.ingest import IngestReport, read_records, snapshot_problem
from recommender.neighbours import CosineNeighbours, update_neighbours
from recommender.pipelines.provenance import describe_source
from recommender.pipelines.update.changes import Changes, classify, merge_records
from recommender.pipelines.update.drift import (
    DriftThresholds,
    _full_build,
    format_drift,
    measure_drift,
)
from recommender.pipelines.update.vectors import updated_vectors

# Meta keys that save_index derives from the arrays; everything else is carried over.
_DERIVED_META = {"format", "format_version", "vectorizer", "facets", "counts", "files"}


class UpdateInputError(ValueError):
    """The sources cannot update this index as asked (e.g. a partial "snapshot")."""


@dataclass
class UpdateSummary:
    """What an update did, for the CLI and the metadata."""

    path: Path
    studies: int
    changes: Changes
    report: IngestReport
    text_changed: int = 0
    neighbours: dict[str, int] = field(default_factory=dict)
    drift: dict = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    written: bool = True

    def format(self, max_listed: int = 5) -> str:
        """A short account for people: counts, some changed studies, drift advice."""
        c = self.changes
        where = f"index written to {self.path}" if self.written else "index already up to date"
        lines = [
            where,
            f"studies indexed: {self.studies:,}",
            f"added {len(c.added):,}, changed {len(c.replaced):,} ({self.text_changed:,} in "
            f"their text), removed {len(c.removed):,}, unchanged {c.unchanged:,}",
        ]
        dated = [(o, n) for o, n in c.replaced if o.last_update_date or n.last_update_date]
        for old, new in dated[:max_listed]:
            dates = f"{old.last_update_date or '?'} -> {new.last_update_date or '?'}"
            lines.append(f"  {new.nct_id}: last update {dates}")
        if len(dated) > max_listed:
            lines.append(f"  ... and {len(dated) - max_listed:,} more")
        if c.stale:
            lines.append(f"kept {len(c.stale):,} indexed studies newer than the incoming record")
        if self.neighbours:
            n = self.neighbours
            lines.append(
                f"neighbour lists: {n['recomputed']:,} searched, {n['merged']:,} merged, "
                f"{n['carried']:,} kept"
            )
        if self.drift:
            lines.append(format_drift(self.drift))
        return "\n".join(lines)


def update_index(
    index: str | os.PathLike,
    sources: Sequence[str | os.PathLike],
    *,
    out: str | os.PathLike | None = None,
    snapshot: bool = False,
    max_removed_share: float = 0.05,
    thresholds: DriftThresholds = DriftThresholds(),
    n_jobs: int = -1,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
    wait: bool = False,
) -> UpdateSummary:
    """Add new studies, replace changed ones and (``snapshot``) drop withdrawn ones.

    Parameters
    ----------
    index : path
        The index to update; it is replaced atomically unless ``out`` is given.
    sources : sequence of path
        Registry files or folders, read as by ``build`` (the last one wins).
    out : path, optional
        Write the updated index here instead.
    snapshot : bool, default False
        The sources hold the whole registry: indexed studies missing from them are
        removed from the index and from every list.
    max_removed_share : float, default 0.05
        Refuse a snapshot that would remove more than this share of the index: the
        registry withdraws a handful of studies a day, so more means the sources
        are not the whole registry (a filtered download, a damaged page).
    thresholds : DriftThresholds
        When the drift since the last full build makes a rebuild advisable.
    n_jobs : int, default -1
        Cores: processes reading large sources, threads for the neighbour searches.
    progress : bool, default False
        Progress bars while reading.
    log : callable, optional
        Receives one line per finished stage.
    wait : bool, default False
        When another build or update is writing the index it writes, wait for it to
        finish, then update what it left, instead of raising :class:`IndexBusyError`.

    Returns
    -------
    UpdateSummary

    Raises
    ------
    UpdateInputError
        A source is an unfinished or filtered download given as a snapshot, or the
        snapshot would remove too much.
    DamagedIndexError, SourceError
        As for loading an index and reading sources.
    IndexBusyError
        Another build or update is writing the index this one writes.
    IndexChangedError
        That index was replaced while this update ran, by a writer that ignored the
        lock: this update, made from the version it read, is not served.
    """
    if not sources:
        raise ValueError("at least one source is needed")
    if snapshot:
        _check_snapshot(sources)
    run = _Run(list(sources), thresholds, n_jobs, log or (lambda _line: None))
    # No index there (a mistyped --index): said before the lock makes a folder beside it.
    read_meta(resolve_index_folder(index))
    target = Path(out) if out is not None else Path(index)
    # Taken before the index is read: what it reads is what it replaces.
    with WriterLock(target, "update", wait=wait, log=run.say) as writer:
        return _update(run, Path(index), target, snapshot, max_removed_share, progress, writer)


def _update(
    run: _Run,
    index: Path,
    target: Path,
    snapshot: bool,
    max_removed_share: float,
    progress: bool,
    writer: WriterLock,
) -> UpdateSummary:
    base = TrialIndex.load(index)
    incoming, run.report = read_records(run.sources, progress=progress, n_jobs=run.n_jobs)
    changes = classify(base.records, base.ids, incoming, snapshot=snapshot)
    run.lap("read")
    run.say(
        f"read {len(incoming):,} studies: {len(changes.added):,} new, "
        f"{len(changes.replaced):,} changed, {len(changes.removed):,} removed"
    )
    if len(changes.removed) > max_removed_share * len(base):
        raise UpdateInputError(
            f"the snapshot lacks {len(changes.removed):,} of the {len(base):,} indexed studies "
            f"(over {100 * max_removed_share:g}%): is it the whole registry? If so, raise "
            "the limit (--max-removed)"
        )
    if not changes.any and target.resolve() == base.path.resolve():
        return UpdateSummary(base.path, len(base), changes, run.report, written=False)
    return _apply(run, base, changes, target, writer.check_unchanged)


@dataclass
class _Run:
    """The settings and bookkeeping of one update."""

    sources: list[str | os.PathLike]
    thresholds: DriftThresholds
    n_jobs: int
    say: Callable[[str], None]
    report: IngestReport = field(default_factory=IngestReport)
    seconds: dict[str, float] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)

    def lap(self, stage: str) -> float:
        elapsed = time.perf_counter() - self.started - sum(self.seconds.values())
        self.seconds[stage] = round(elapsed, 3)
        return self.seconds[stage]


def _apply(
    run: _Run, base: TrialIndex, changes: Changes, target: Path, guard: Callable[[], None]
) -> UpdateSummary:
    """Compute the updated vectors, lists and metadata, and save them."""
    records, old_to_new = merge_records(base, changes)
    if not records:
        raise UpdateInputError("the update would remove every study; nothing would be left")
    vectors, fresh = updated_vectors(base, records, old_to_new, changes, run.n_jobs)
    run.say(f"vectorised {len(fresh):,} new or rewritten studies ({run.lap('vectorise'):.1f} s)")
    # One transpose of the new vectors serves the searches and the save.
    search = CosineNeighbours(method="exact", n_jobs=run.n_jobs).fit(vectors)
    indices, scores, work = update_neighbours(
        vectors, base.neighbour_indices, base.neighbour_scores, old_to_new, fresh, search=search
    )
    run.say(
        f"neighbours: {work['recomputed']:,} lists searched, {work['merged']:,} merged "
        f"({run.lap('neighbours'):.1f} s)"
    )
    stable = np.setdiff1d(np.arange(len(records)), fresh)
    drift = measure_drift(base, changes, records, fresh, stable, run.thresholds)
    path = save_index(
        target,
        records=records,
        vectorizer=base.vectorizer,
        vectors=vectors,
        neighbour_indices=indices,
        neighbour_scores=scores,
        meta=_meta(run, base, changes, len(fresh), work, drift),
        report=_report(base.path, run.report, changes),
        base=base,  # unchanged parts are hard-linked from it, not written again
        base_rows=records.base_rows,
        postings=search.postings_,
        guard=guard,
    )
    run.say(f"saved to {path} ({run.lap('save'):.1f} s)")
    rewritten = len(fresh) - len(changes.added)
    return UpdateSummary(
        path, len(records), changes, run.report, rewritten, work, drift, run.seconds
    )


def _check_snapshot(sources: Sequence[str | os.PathLike]) -> None:
    # Removing whatever a filtered download lacks would empty most of the index.
    for source in sources:
        problem = snapshot_problem(source)
        if problem:
            raise UpdateInputError(f"--snapshot needs a complete download: {problem}")


def _meta(
    run: _Run, base: TrialIndex, changes: Changes, n_fresh: int, work: dict, drift: dict
) -> dict:
    carried = {k: v for k, v in base.meta.items() if k not in _DERIVED_META}
    dates = [r.last_update_date for r in changes.added if r.last_update_date]
    dates += [new.last_update_date for _, new in changes.replaced if new.last_update_date]
    now = utc_now()
    update = {
        "updated_at": now,
        "snapshot": changes.snapshot,
        "sources": [
            {**describe_source(path), **vars(summary)}
            for path, summary in zip(run.sources, run.report.sources, strict=True)
        ],
        "added": len(changes.added),
        "changed": len(changes.replaced),
        "text_changed": n_fresh - len(changes.added),
        "removed": len(changes.removed),
        "stale_kept": len(changes.stale),
        "unchanged": changes.unchanged,
        "skipped": len(run.report.skipped),
        "last_update_dates": {"min": min(dates, default=None), "max": max(dates, default=None)},
        "neighbours": {**work, "method": "exact"},
        "seconds": run.seconds,
    }
    return carried | {
        "built_at": now,  # what a reload or /ready reports: this version of the index
        "full_build": _full_build(base.meta),
        "update": update,
        "drift": drift,
    }


def _report(base_path: Path, report: IngestReport, changes: Changes) -> dict:
    """``build_report.json``: the full build's report, and what this update read and did."""
    try:
        previous = json.loads((base_path / "build_report.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        previous = {}
    build = previous.get("build", previous) if isinstance(previous, dict) else {}
    return {
        "build": build,
        "update": {
            "sources": [vars(s) for s in report.sources],
            "skipped": [vars(s) for s in report.skipped],
            "added": [r.nct_id for r in changes.added],
            "changed": [
                {"nct_id": new.nct_id, "last_update": [old.last_update_date, new.last_update_date]}
                for old, new in changes.replaced
            ],
            "removed": changes.removed,
            "stale_kept": [
                {
                    "nct_id": old.nct_id,
                    "indexed": old.last_update_date,
                    "incoming": new.last_update_date,
                }
                for old, new in changes.stale
            ],
        },
    }
