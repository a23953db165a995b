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

Drift: as updates pile up, the vocabulary and IDF describe the registry less well.
The metadata keeps, since the last full build, the share of studies added or with
new text, and the share of their words that the vocabulary does not know, beyond
the share it does not know in the indexed studies themselves (rare and very common
words are dropped at every build). Over either threshold, a full rebuild is advised.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from joblib import Parallel, delayed, effective_n_jobs
from numba import njit

from recommender._kernels import rescore_top_k
from recommender.fetch import snapshot_problem
from recommender.index import TrialIndex, describe_source, save_index, utc_now
from recommender.ingest import IngestReport, read_records
from recommender.neighbours import NO_NEIGHBOUR, CosineNeighbours, as_float32_csr
from recommender.records import TrialRecord
from recommender.stop_words import ENGLISH_STOP_WORDS
from recommender.text import FieldGroupVectorizer, words
from recommender.updated_records import UpdatedRecords, merge_ids
from recommender.versions import check_replaceable

# Meta keys that save_index derives from the arrays; everything else is carried over.
_DERIVED_META = {"format", "format_version", "vectorizer", "facets", "counts", "files"}
# Candidates kept from the sparse product are re-scored exactly by the kernel; this
# margin only guards the cut against rounding, it never decides a list.
_SCORE_MARGIN = 1e-5
_BASELINE_SAMPLE = 1000
_ROW_BLOCK = 512  # rows per parallel task at most
_COPY_BLOCK = 65536  # rows per task when copying vectors


class UpdateInputError(ValueError):
    """The sources cannot update this index as asked (e.g. a partial "snapshot")."""


@dataclass(frozen=True)
class DriftThresholds:
    """When to advise a full rebuild.

    Parameters
    ----------
    changed_share : float, default 0.10
        Studies added, or whose text changed, since the last full build, as a share
        of the studies that build indexed.
    unseen_share : float, default 0.05
        Share of the words of those studies unknown to the vocabulary, beyond the
        share unknown in already indexed studies.
    """

    changed_share: float = 0.10
    unseen_share: float = 0.05


@dataclass
class Changes:
    """How the incoming records differ from the indexed ones."""

    added: list[TrialRecord] = field(default_factory=list)
    replaced: list[tuple[TrialRecord, TrialRecord]] = field(default_factory=list)  # old, new
    stale: list[tuple[TrialRecord, TrialRecord]] = field(default_factory=list)  # kept, older
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    snapshot: bool = False

    @property
    def any(self) -> bool:
        return bool(self.added or self.replaced or self.removed)


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


def format_drift(drift: dict) -> str:
    """One or two lines on drift since the last full build, with the advice."""
    line = (
        f"since the full build of {drift['full_build_at'][:10]}: "
        f"{100 * drift['changed_share']:.1f}% of studies new or rewritten, "
        f"{100 * drift['excess_unseen_share']:.1f}% of their words unknown to the vocabulary "
        f"(beyond the {100 * drift['baseline_unseen_share']:.1f}% usual)"
    )
    if drift["rebuild_advised"]:
        line += "\nfull rebuild advised: " + "; ".join(drift["reasons"])
    return line


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
    """
    if not sources:
        raise ValueError("at least one source is needed")
    if snapshot:
        _check_snapshot(sources)
    if out is not None:
        check_replaceable(Path(out))  # before the long work, not after it
    run = _Run(list(sources), thresholds, n_jobs, log or (lambda _line: None))
    base = TrialIndex.load(index)
    incoming, run.report = read_records(sources, progress=progress, n_jobs=n_jobs)
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
    target = Path(out) if out is not None else Path(index)
    if not changes.any and target.resolve() == base.path.resolve():
        return UpdateSummary(base.path, len(base), changes, run.report, written=False)
    return _apply(run, base, changes, target)


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


def _apply(run: _Run, base: TrialIndex, changes: Changes, target: Path) -> UpdateSummary:
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


# -- which studies changed -----------------------------------------------------------


def classify(
    indexed: Sequence[TrialRecord],
    indexed_ids: np.ndarray,
    incoming: Sequence[TrialRecord],
    *,
    snapshot: bool,
) -> Changes:
    """Sort incoming records into added, replaced, stale and unchanged ones.

    A record equal to the indexed one is unchanged. One whose last-update date is
    older than the indexed record's is *stale* and ignored (an old download passed
    by mistake must not undo newer data). With ``snapshot``, indexed studies absent
    from ``incoming`` are removed. ``indexed`` (the index's records, in the order of
    the ascending ``indexed_ids``) is read only where an incoming id is found.
    """
    indexed_ids = np.asarray(indexed_ids)
    incoming_ids = np.asarray([r.nct_id for r in incoming], dtype=indexed_ids.dtype)
    rows = np.searchsorted(indexed_ids, incoming_ids).tolist()
    changes = Changes(snapshot=snapshot)
    for record, row in zip(incoming, rows, strict=True):
        found = row < len(indexed_ids) and indexed_ids[row] == record.nct_id
        old = indexed[row] if found else None
        if old is None:
            changes.added.append(record)
        elif old == record:
            changes.unchanged += 1
        elif _older(record.last_update_date, old.last_update_date):
            changes.stale.append((old, record))
        else:
            changes.replaced.append((old, record))
    if snapshot:
        changes.removed = indexed_ids[~np.isin(indexed_ids, incoming_ids)].tolist()
    return changes


def _older(date: str | None, than: str | None) -> bool:
    """Whether ISO date ``date`` is before ``than``, compared at their common precision."""
    if not date or not than:
        return False
    common = min(len(date), len(than))
    return date[:common] < than[:common]


def merge_records(base: TrialIndex, changes: Changes) -> tuple[UpdatedRecords, np.ndarray]:
    """The updated records sorted by id, and each indexed record's new row (-1: removed).

    The kept records are not decoded: they are read from ``base`` when asked for.
    """
    new = [record for _, record in changes.replaced] + changes.added
    ids, source, old_to_new = merge_ids(base.ids, changes.removed, new)
    return UpdatedRecords(base.records, ids, source, new), old_to_new


# -- vectors --------------------------------------------------------------------------


def updated_vectors(
    base: TrialIndex,
    records: UpdatedRecords,
    old_to_new: np.ndarray,
    changes: Changes,
    n_jobs: int = -1,
) -> tuple[sp.csr_matrix, np.ndarray]:
    """The updated matrix, and the rows whose vector is new (added or rewritten).

    Kept studies keep their stored rows; new and replaced ones are vectorised with
    the index's vocabulary. A replaced study whose vector came out the same (a new
    status, new dates) does not count as new: no score involving it moved.
    """
    n = len(records)
    candidates = changes.added + [new for _, new in changes.replaced]
    cand_ids = np.asarray([r.nct_id for r in candidates], dtype=records.ids.dtype)
    cand_rows = np.searchsorted(records.ids, cand_ids).astype(np.int64)
    new_of_old = np.full(n, -1, dtype=np.int64)
    kept = np.flatnonzero(old_to_new >= 0)
    new_of_old[old_to_new[kept]] = kept
    cand_vectors = _transform(base.vectorizer, candidates, base.vectors.shape[1])
    same = _same_rows(cand_vectors, base.vectors, new_of_old[cand_rows])
    fresh_rows, fresh_vectors = cand_rows[~same], cand_vectors[np.flatnonzero(~same)]
    if not len(fresh_rows) and n == len(old_to_new) and len(kept) == n:
        return base.vectors, fresh_rows  # same rows, same vectors: the very same matrix
    # Each row from the stored matrix or from the fresh ones, copied once into the new
    # matrix (gathering, stacking and reordering made three copies of every vector).
    source = new_of_old.copy()
    source[fresh_rows] = -1 - np.arange(len(fresh_rows))  # -1 - i: fresh row i
    old, new = base.vectors, as_float32_csr(fresh_vectors)
    vectors = _assemble_rows(old, new, source, n_jobs)
    return as_float32_csr(vectors), np.sort(fresh_rows)


def _assemble_rows(
    old: sp.csr_matrix, new: sp.csr_matrix, source: np.ndarray, n_jobs: int
) -> sp.csr_matrix:
    """Rows of ``old`` (``source[r] >= 0``) and of ``new`` (``-1 - source[r]``), one copy.

    Both threads copy: most of the time goes to faulting in the new pages, and that
    runs on every core.
    """
    from_old = source >= 0
    sizes = np.empty(len(source), dtype=np.int64)
    sizes[from_old] = np.diff(old.indptr)[source[from_old]]
    sizes[~from_old] = np.diff(new.indptr)[-1 - source[~from_old]]
    indptr = np.zeros(len(source) + 1, dtype=np.int64)
    np.cumsum(sizes, out=indptr[1:])
    indices = np.empty(indptr[-1], dtype=np.int32)
    data = np.empty(indptr[-1], dtype=np.float32)

    def copy(a: int, b: int) -> None:
        _copy_rows(old.indptr, old.indices, old.data, new.indptr, new.indices, new.data,
                   source, indptr, indices, data, a, b)  # fmt: skip

    Parallel(n_jobs=n_jobs, prefer="threads")(
        delayed(copy)(a, b) for a, b in _blocks(len(source), n_jobs, _COPY_BLOCK)
    )
    return sp.csr_matrix((data, indices, indptr), shape=(len(source), old.shape[1]))


@njit(nogil=True, cache=True)
def _copy_rows(a_indptr, a_indices, a_data, b_indptr, b_indices, b_data, source,
               indptr, indices, data, start, stop):  # fmt: skip
    for r in range(start, stop):
        s = source[r]
        out = indptr[r]
        if s >= 0:
            for p in range(a_indptr[s], a_indptr[s + 1]):
                indices[out] = a_indices[p]
                data[out] = a_data[p]
                out += 1
        else:
            for p in range(b_indptr[-1 - s], b_indptr[-s]):
                indices[out] = b_indices[p]
                data[out] = b_data[p]
                out += 1


def _transform(vectorizer: FieldGroupVectorizer, records, n_features: int) -> sp.csr_matrix:
    if not records:
        return sp.csr_matrix((0, n_features), dtype=np.float32)
    return as_float32_csr(vectorizer.transform(records))


def _same_rows(new: sp.csr_matrix, old: sp.csr_matrix, old_rows: np.ndarray) -> np.ndarray:
    """Per row of ``new``: equal to row ``old_rows[i]`` of ``old`` (-1: no old row)."""
    same = np.zeros(new.shape[0], dtype=bool)
    for i, j in enumerate(old_rows):
        if j < 0:
            continue
        a = slice(new.indptr[i], new.indptr[i + 1])
        b = slice(old.indptr[j], old.indptr[j + 1])
        same[i] = np.array_equal(new.indices[a], old.indices[b]) and np.array_equal(
            new.data[a], old.data[b]
        )
    return same


# -- neighbour lists ------------------------------------------------------------------


def update_neighbours(
    X: sp.csr_matrix,
    old_indices: np.ndarray,
    old_scores: np.ndarray,
    old_to_new: np.ndarray,
    fresh: np.ndarray,
    *,
    n_jobs: int = -1,
    search: CosineNeighbours | None = None,
) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Every row's top-``k`` over ``X``, recomputing only what can have changed.

    Parameters
    ----------
    X : csr_matrix of shape (n, n_features)
        The updated vectors (unit rows).
    old_indices, old_scores : ndarray of shape (n_old, k)
        The stored lists, in old row numbers.
    old_to_new : ndarray of shape (n_old,)
        Each old row's new row, -1 when removed.
    fresh : ndarray of int
        New rows whose vector is new (added, or text changed).
    n_jobs : int, default -1
        Threads for the searches.
    search : CosineNeighbours, optional
        An exact search fitted on ``X``, to share its postings with the caller
        (its ``n_jobs`` then applies); made here when None.

    Returns
    -------
    indices, scores : ndarray of shape (n, k)
    work : dict
        Rows ``recomputed`` (exact search), ``merged`` and ``carried`` unchanged.
    """
    X = as_float32_csr(X)
    n, k = X.shape[0], old_indices.shape[1]
    if search is None:
        search = CosineNeighbours(method="exact", n_jobs=n_jobs).fit(X)
    elif search.method != "exact" or search.n_rows_ != n:
        raise ValueError("search must be an exact search fitted on X")
    is_fresh = np.zeros(n, dtype=bool)
    is_fresh[fresh] = True
    # Stable rows: kept, with the vector they had; their lists start as they were.
    kept = np.flatnonzero(old_to_new >= 0)
    stable_old = kept[~is_fresh[old_to_new[kept]]]
    stable = old_to_new[stable_old]
    indices = np.full((n, k), NO_NEIGHBOUR, dtype=np.int32)
    scores = np.zeros((n, k), dtype=np.float32)
    dirty = np.empty(len(stable), dtype=bool)  # lost a member, or holds a rewritten one
    lists = (np.asarray(old_indices), np.asarray(old_scores), old_to_new, is_fresh)
    tasks = (
        delayed(_carry_lists)(*lists, stable_old, stable, indices, scores, dirty, a, b)
        for a, b in _blocks(len(stable), search.n_jobs, _COPY_BLOCK)
    )
    Parallel(n_jobs=search.n_jobs, prefer="threads")(tasks)
    kth = scores[stable, k - 1]
    merged, merged_ids, merged_scores, fresh_ids, fresh_scores = _merge(
        X, search, fresh, stable, indices, kth, dirty
    )
    old_kth = kth[np.searchsorted(stable, merged)]
    # Every trial outside the old list scored at most the old k-th, so the merge is
    # complete when its own k-th still reaches that (or the old list was not full).
    complete = (merged_ids[:, -1] != NO_NEIGHBOUR) & (merged_scores[:, -1] >= old_kth)
    safe = (old_kth == 0) | complete
    indices[merged[safe]], scores[merged[safe]] = merged_ids[safe], merged_scores[safe]
    # Fresh rows got their lists while being scored against every row (_entering);
    # merged rows are stable rows, so the two sets do not meet.
    indices[fresh], scores[fresh] = fresh_ids, fresh_scores
    unsafe = merged[~safe].astype(np.int64)
    indices[unsafe], scores[unsafe] = _search(search, X, unsafe, k)
    searched = np.union1d(fresh, unsafe)
    n_merged = int(safe.sum())
    work = {
        "recomputed": len(searched),
        "merged": n_merged,
        "carried": n - len(searched) - n_merged,
    }
    return indices, scores, work


def _merge(
    X: sp.csr_matrix,
    search: CosineNeighbours,
    fresh: np.ndarray,
    stable: np.ndarray,
    lists: np.ndarray,
    kth: np.ndarray,
    dirty: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Re-score the stable rows that gain a newcomer or lost or changed a member.

    ``lists`` holds the stable rows' carried lists (in new row numbers). Returns
    those rows (sorted) and the best ``k`` of their old members that are still there
    (changed ones scored anew) and newcomers that reach the old k-th; then the fresh
    rows' own exact lists.
    """
    threshold = np.full(X.shape[0], np.inf, dtype=np.float32)
    threshold[stable] = kth
    k = lists.shape[1]
    rows, cands, fresh_ids, fresh_scores = _entering(X, search, fresh, threshold, k)
    targets = np.union1d(rows, stable[dirty])
    rows = np.concatenate([rows, np.repeat(targets, k)])
    cands = np.concatenate([cands, lists[targets].ravel()])
    return (targets, *_rescore(X, targets, rows, cands, k, search.n_jobs), fresh_ids, fresh_scores)


@njit(nogil=True, cache=True)
def _carry_lists(old_indices, old_scores, old_to_new, is_fresh, stable_old, stable,
                 indices, scores, dirty, start, stop):  # fmt: skip
    """Copy stable rows ``start..stop``'s old lists to their new rows, members in new
    row numbers (removed ones -1, their scores kept), and mark a list ``dirty`` when
    it lost a member or holds one whose vector is new. One pass over the lists."""
    for r in range(start, stop):
        source, target = stable_old[r], stable[r]
        changed = False
        for c in range(old_indices.shape[1]):
            old = old_indices[source, c]
            new = old_to_new[old] if old >= 0 else NO_NEIGHBOUR
            indices[target, c] = new
            scores[target, c] = old_scores[source, c]
            changed |= (old >= 0 and new < 0) or (new >= 0 and is_fresh[new])
        dirty[r] = changed


def _entering(
    X: sp.csr_matrix,
    search: CosineNeighbours,
    fresh: np.ndarray,
    threshold: np.ndarray,
    k: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pairs (row, fresh row) where the fresh row scores at least the row's
    threshold, and each fresh row's exact top-``k`` (of shape (len(fresh), k)).

    Blocks of fresh rows are searched in parallel threads, each fresh row once for
    both results (:meth:`CosineNeighbours.kneighbors_reaching`).
    """
    cut = (threshold - _SCORE_MARGIN).astype(np.float32)
    fresh = np.asarray(fresh, dtype=np.int64)
    ids = np.full((len(fresh), k), NO_NEIGHBOUR, dtype=np.int32)
    scores = np.zeros((len(fresh), k), dtype=np.float32)

    def block(a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
        ids[a:b], scores[a:b], found_rows, found_at = search.kneighbors_reaching(
            X[fresh[a:b]], k, cut, exclude=fresh[a:b]
        )
        return found_rows, fresh[a:b][found_at]

    tasks = [delayed(block)(a, b) for a, b in _blocks(len(fresh), search.n_jobs)]
    found = Parallel(n_jobs=search.n_jobs, prefer="threads")(tasks)
    rows = [np.zeros(0, np.int64), *(r for r, _ in found)]
    cands = [np.zeros(0, np.int64), *(c for _, c in found)]
    return np.concatenate(rows), np.concatenate(cands), ids, scores


def _rescore(
    X: sp.csr_matrix, targets: np.ndarray, rows: np.ndarray, cands: np.ndarray, k: int, n_jobs: int
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` of each of ``targets`` (sorted rows) among its candidates.

    ``(rows[i], cands[i])`` pairs name the candidates; -1 candidates and repeats are
    dropped. A target left with no candidate gets an empty (-1) list.
    """
    n = X.shape[0]
    keep = cands >= 0
    keys = np.sort(rows[keep] * n + cands[keep])
    # Sorted, then repeats dropped: np.unique hashes first, ten times slower here.
    first = np.ones(len(keys), dtype=bool)
    first[1:] = keys[1:] != keys[:-1]
    keys = keys[first]
    pair_rows, pair_cands = keys // n, keys % n
    starts = np.searchsorted(pair_rows, targets, side="left")
    counts = np.searchsorted(pair_rows, targets, side="right") - starts
    ids = np.full((len(targets), k), NO_NEIGHBOUR, dtype=np.int32)
    scores = np.zeros((len(targets), k), dtype=np.float32)
    tasks = [
        delayed(_rescore_block)(X, targets, starts, counts, pair_cands, k, a, b)
        for a, b in _blocks(len(targets), n_jobs)
    ]
    for a, block_ids, block_scores in Parallel(n_jobs=n_jobs, prefer="threads")(tasks):
        ids[a : a + len(block_ids)], scores[a : a + len(block_ids)] = block_ids, block_scores
    return ids, scores


def _rescore_block(X, unique_rows, starts, counts, pair_cands, k, a, b):
    width = max(1, int(counts[a:b].max()))
    candidates = np.full((b - a, width), NO_NEIGHBOUR, dtype=np.int32)
    for i in range(a, b):
        candidates[i - a, : counts[i]] = pair_cands[starts[i] : starts[i] + counts[i]]
    Q = X[unique_rows[a:b]]
    ids = np.empty((b - a, k), dtype=np.int32)
    scores = np.empty((b - a, k), dtype=np.float32)
    rescore_top_k(
        Q.indptr, Q.indices, Q.data, X.indptr, X.indices, X.data,
        X.shape[1], candidates, ids, scores,
    )  # fmt: skip
    return a, ids, scores


def _search(
    search: CosineNeighbours, X: sp.csr_matrix, rows: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` of ``rows`` among all rows, blocks in parallel threads."""
    ids = np.full((len(rows), k), NO_NEIGHBOUR, dtype=np.int32)
    scores = np.zeros((len(rows), k), dtype=np.float32)

    def block(a: int, b: int):
        return a, *search.kneighbors(X[rows[a:b]], k, exclude=rows[a:b])

    tasks = [delayed(block)(a, b) for a, b in _blocks(len(rows), search.n_jobs)]
    for a, block_ids, block_scores in Parallel(n_jobs=search.n_jobs, prefer="threads")(tasks):
        ids[a : a + len(block_ids)], scores[a : a + len(block_ids)] = block_ids, block_scores
    return ids, scores


def _blocks(n: int, n_jobs: int, largest: int = _ROW_BLOCK) -> list[tuple[int, int]]:
    # Four tasks per thread at least: an update searches a few hundred rows at tens of
    # milliseconds each, and blocks of 512 left one thread with most of them.
    size = max(1, min(largest, -(-n // (4 * effective_n_jobs(n_jobs)))))
    return [(a, min(a + size, n)) for a in range(0, n, size)]


# -- drift ----------------------------------------------------------------------------


def unseen_words(
    vectorizer: FieldGroupVectorizer, records: Sequence[TrialRecord]
) -> tuple[int, int]:
    """How many words ``records`` hold and how many of them the vocabulary lacks.

    Words are counted per field group, stop words left out, and a word is known when
    its group's vocabulary holds it as a single-word term.
    """
    _, vocabularies, _ = vectorizer.get_state()
    total = unseen = 0
    for group in vectorizer.groups:
        known = {term for term in vocabularies[group.name] if " " not in term}
        for record in records:
            for item in group.items(record):
                for word in words(item):
                    if word not in ENGLISH_STOP_WORDS:
                        total += 1
                        unseen += word not in known
    return total, unseen


def measure_drift(
    base: TrialIndex,
    changes: Changes,
    records: Sequence[TrialRecord],
    fresh: np.ndarray,
    stable: np.ndarray,
    thresholds: DriftThresholds,
) -> dict:
    """Drift since the last full build, accumulated over the updates since, and advice.

    Parameters
    ----------
    base : TrialIndex
        The index before this update (its metadata holds the drift so far).
    changes : Changes
    records : sequence of TrialRecord
        The updated records.
    fresh, stable : ndarray of int
        Rows of ``records`` with a new vector, and the others.
    thresholds : DriftThresholds
    """
    previous = base.meta.get("drift", {})
    full = _full_build(base.meta)
    n_fresh = len(fresh)
    tokens, unseen = unseen_words(base.vectorizer, [records[i] for i in fresh])
    sample = stable[np.linspace(0, len(stable) - 1, min(_BASELINE_SAMPLE, len(stable))).astype(int)]
    base_tokens, base_unseen = unseen_words(base.vectorizer, [records[i] for i in sample])
    drift = {
        "full_build_at": full["built_at"],
        "full_build_studies": full["studies"],
        "updates": previous.get("updates", 0) + 1,
        "added": previous.get("added", 0) + len(changes.added),
        "changed": previous.get("changed", 0) + len(changes.replaced),
        "text_changed": previous.get("text_changed", 0) + n_fresh - len(changes.added),
        "removed": previous.get("removed", 0) + len(changes.removed),
        "tokens": previous.get("tokens", 0) + tokens,
        "unseen_tokens": previous.get("unseen_tokens", 0) + unseen,
        "baseline_unseen_share": round(base_unseen / max(base_tokens, 1), 4),
    }
    drift["changed_share"] = round(
        (drift["added"] + drift["text_changed"]) / max(full["studies"], 1), 4
    )
    drift["unseen_share"] = round(drift["unseen_tokens"] / max(drift["tokens"], 1), 4)
    excess = drift["unseen_share"] - drift["baseline_unseen_share"] if drift["tokens"] else 0.0
    drift["excess_unseen_share"] = round(max(0.0, excess), 4)
    return drift | _advice(drift, thresholds)


def _full_build(meta: dict) -> dict:
    full = meta.get("full_build")
    if full:
        return full
    return {"built_at": meta.get("built_at", ""), "studies": meta["counts"]["studies"]}


def _advice(drift: dict, thresholds: DriftThresholds) -> dict:
    reasons = []
    if drift["changed_share"] > thresholds.changed_share:
        reasons.append(
            f"{100 * drift['changed_share']:.1f}% of studies are new or rewritten "
            f"(threshold {100 * thresholds.changed_share:g}%)"
        )
    if drift["excess_unseen_share"] > thresholds.unseen_share:
        reasons.append(
            f"{100 * drift['excess_unseen_share']:.1f}% more of their words are unknown to "
            f"the vocabulary (threshold {100 * thresholds.unseen_share:g}%)"
        )
    return {
        "thresholds": {
            "changed_share": thresholds.changed_share,
            "unseen_share": thresholds.unseen_share,
        },
        "rebuild_advised": bool(reasons),
        "reasons": reasons,
    }


# -- metadata -------------------------------------------------------------------------


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
