"""Every row's top-k among all rows: what :meth:`CosineNeighbours.all_kneighbors` runs.

The cost of ``X @ X.T`` is the sum over terms of df squared, and the few words that
occur in more than about 10% of trials' texts make most of it; the rest is a long
row's many light terms. The ``"pruned"`` method (:func:`all_pruned`) therefore finds
candidates through each row's 50 heaviest terms but the frequent ones (``prunable``
columns in over 10% of rows), each term proposing only the 5,000 rows where it weighs
most (its champion list, which bounds the work per row at 250,000 postings however
large the corpus), keeps the best 250 by that partial score, and scores them exactly
over all their terms. Every pair so scored is offered to both its rows (by the worker
thread that scored it): j belongs in i's list when j's heavy terms propose i even if
i's do not propose j. So a pair that both its rows propose (a third of them on the
registry corpus) is scored once, by the row with more terms (a score costs a pass
over the other row's terms): all candidates are found before any is scored. Rows that
share too few of those terms with anything to fill their candidate list are searched
exactly at the end, a batch at a time by a pass over the rows. The champion lists are
made straight from the rows, so the pruned search never holds the whole transpose (a
third of the build's memory at 600,000 trials). The ``"exact"`` method
(:func:`all_exact`) accumulates every term.

Blocks of rows are tasks for joblib: threads here, a Dask cluster's workers under
joblib's Dask backend, through the same code. A task gets a factory of unfitted
searches (``make_search``) and the large arrays as arguments, not inside a search,
so that under Dask each large matrix is shipped to the workers once, not per task.
"""

from __future__ import annotations

import contextlib
import functools
import queue
import threading
from collections.abc import Callable, Iterator

import numpy as np
import scipy.sparse as sp
from joblib import Parallel, delayed
from joblib._parallel_backends import SequentialBackend, ThreadingBackend
from joblib.parallel import get_active_backend

from recommender.neighbours._arrays import NO_NEIGHBOUR
from recommender.neighbours._heap_kernels import merge_lists, offer_pairs, scan_top_k
from recommender.neighbours._postings_kernels import drop_marked, mark_mutual_pairs
from recommender.neighbours._scoring_kernels import rescore_pairs

SCAN_BATCH = 256  # rows searched exactly per pass over the matrix
REVERSE_SETS = 1


def all_exact(search, X: sp.csr_matrix, k: int, progress: Callable[[int], None]):
    """Every row's exact top-``k`` (``search`` fitted on ``X``, method ``"exact"``)."""
    indices = np.full((search.n_rows_, k), NO_NEIGHBOUR, dtype=np.int32)
    scores = np.zeros((search.n_rows_, k), dtype=np.float32)
    make, postings, bounds = _factory(search), search.postings_, search._term_bounds()
    tasks = (
        delayed(_exact_task)(make, postings, bounds, X, k, start, stop)
        for start, stop in search.blocks()
    )
    for start, stop, (ids, values) in _unordered(search.n_jobs)(tasks):
        indices[start:stop], scores[start:stop] = ids, values
        progress(stop - start)
    return indices, scores


def all_pruned(search, X: sp.csr_matrix, k: int, progress: Callable[[int], None]):
    """Every row's candidates first, then each pair found from both its rows kept
    on one side only (about a third of them on the registry corpus), then the
    kept pairs scored exactly and offered to both rows; then the rows with too
    few candidates searched exactly. A row counts half in ``progress`` when its
    candidates are found and half when they are scored."""
    make, rare = _factory(search), search.rare_postings_
    candidates = np.empty((search.n_rows_, search._n_candidates(k)), dtype=np.int32)
    searched = []  # rows with too few candidates, searched exactly at the end
    tasks = (
        delayed(_candidates_task)(make, rare, X, k, start, stop) for start, stop in search.blocks()
    )
    for start, stop, (block, exact) in _unordered(search.n_jobs)(tasks):
        candidates[start:stop] = block
        searched.append(exact)
        progress((stop - start) // 2)
    # The champion lists have done their work: at 600,000 rows they are 390 MB
    # that the scoring below need not hold beside its candidates and heaps.
    del rare
    search._set_rare_postings(None)
    drop_mutual_pairs(search, candidates, X)

    indices = np.full((search.n_rows_, k), NO_NEIGHBOUR, dtype=np.int32)
    scores = np.zeros((search.n_rows_, k), dtype=np.float32)
    backend, _ = get_active_backend(prefer="threads")
    local = isinstance(backend, ThreadingBackend | SequentialBackend)
    # Local: each task offers its pairs itself, into the shared lists (its own rows
    # only) and a borrowed set of reverse heaps, so that the random access of the
    # reverse offers runs on every thread instead of the caller's. Elsewhere
    # (Dask) the tasks return their scores and the pairs are offered here.
    heaps = _ReverseHeaps(search.n_rows_, k, REVERSE_SETS if local else 1)
    shared = (heaps, indices, scores) if local else (None, None, None)
    tasks = (
        delayed(_scores_task)(X, start, stop, candidates[start:stop], *shared)
        for start, stop in search.blocks()
    )
    for start, stop, block in _unordered(search.n_jobs)(tasks):
        if block is not None:
            _offer_both_ways(heaps, indices, scores, start, stop,
                             candidates[start:stop], block)  # fmt: skip
        progress((stop - start) - (stop - start) // 2)
    rows = np.concatenate(searched) if searched else np.zeros(0, np.int64)
    exact_ids, exact_scores = scan_kneighbors(search, X, rows, k)
    _offer_both_ways(heaps, indices, scores, rows, None, exact_ids, exact_scores)
    for reverse_indices, reverse_scores in heaps.all():
        lists = (indices, scores, reverse_indices, reverse_scores)
        work = (delayed(merge_lists)(*(a[i:j] for a in lists)) for i, j in search.blocks())
        Parallel(n_jobs=search.n_jobs, backend="threading")(work)
    return indices, scores


def drop_mutual_pairs(search, candidates: np.ndarray, X: sp.csr_matrix) -> None:
    """Keep each pair that both its rows found on one side only: the row with more
    terms, which scores the other (a score costs a pass over the candidate's
    terms; this side needs 14% fewer than the smaller row id's, on the registry
    corpus). Ties in length go to the larger row id."""
    n_rows = search.n_rows_
    lengths = np.diff(X.indptr).astype(np.int64)
    keys = lengths * n_rows + np.arange(n_rows, dtype=np.int64)
    dropped = np.zeros((n_rows, -(-candidates.shape[1] // 8)), dtype=np.uint8)
    # Marked first, dropped after: a row searched for a pair must not change meanwhile.
    for kernel, arguments in (
        (mark_mutual_pairs, (candidates, keys, dropped)),
        (drop_marked, (candidates, dropped)),
    ):
        work = (delayed(kernel)(*arguments, a, b) for a, b in search.blocks())
        Parallel(n_jobs=search.n_jobs, backend="threading")(work)


def scan_kneighbors(
    search, X: sp.csr_matrix, rows: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` of ``rows`` by passes over ``X``'s rows (no postings needed),
    a batch of rows per pass; equal to :meth:`CosineNeighbours.kneighbors` bit for bit."""
    ids = np.full((len(rows), k), NO_NEIGHBOUR, dtype=np.int32)
    values = np.zeros((len(rows), k), dtype=np.float32)

    def batch(a: int, b: int) -> None:
        Qt = X[rows[a:b]].T.tocsr()
        scan_top_k(X.indptr, X.indices, X.data, Qt.indptr, Qt.indices, Qt.data,
                   rows[a:b], ids[a:b], values[a:b])  # fmt: skip

    size = SCAN_BATCH
    work = (delayed(batch)(a, min(a + size, len(rows))) for a in range(0, len(rows), size))
    Parallel(n_jobs=search.n_jobs, backend="threading")(work)
    return ids, values


class _ReverseHeaps:
    """Sets of reverse heaps (each row's best among the rows that had it as a
    candidate), each lent to one task at a time: a new set is made when all are out,
    up to ``max_sets``, then a task waits for one to come back.

    Merging every set into the rows' own lists at the end gives the same lists
    whichever set a pair went to, since each keeps a top-k under a total order.
    """

    def __init__(self, n_rows: int, k: int, max_sets: int = 1) -> None:
        self.n_rows, self.k, self.max_sets = n_rows, k, max_sets
        self._sets: list[tuple[np.ndarray, np.ndarray]] = []
        self._free: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def lend(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        with self._lock:
            heaps = self._new() if self._free.empty() and len(self._sets) < self.max_sets else None
        if heaps is None:
            heaps = self._free.get()  # every borrower gives its set back
        try:
            yield heaps
        finally:
            self._free.put(heaps)

    def all(self) -> list[tuple[np.ndarray, np.ndarray]]:
        return list(self._sets)

    def _new(self) -> tuple[np.ndarray, np.ndarray]:
        heaps = (
            np.full((self.n_rows, self.k), NO_NEIGHBOUR, dtype=np.int32),
            np.zeros((self.n_rows, self.k), dtype=np.float32),
        )
        self._sets.append(heaps)
        return heaps


def _offer_both_ways(heaps, indices, scores, start, stop, candidates, candidate_scores):
    """Offer each exactly scored pair to both its rows: j may belong in i's list
    though i's terms did not propose it, if j's terms proposed i. ``start..stop`` are
    the candidates' rows, or ``start`` is an array of them (``stop`` None)."""
    rows = np.arange(start, stop, dtype=np.int64) if stop is not None else start
    with heaps.lend() as (reverse_indices, reverse_scores):
        offer_pairs(indices, scores, reverse_indices, reverse_scores, rows, candidates,
                    candidate_scores)  # fmt: skip


def _factory(search) -> Callable:
    """Makes unfitted searches with ``search``'s parameters, in any worker."""
    return functools.partial(type(search), **search.get_params())


def _exact_task(make_search, postings, bounds, X, k, start, stop):
    """One block of :func:`all_exact`, in any worker: ``(start, stop, (indices, scores))``."""
    search = make_search().fit(X)
    search._postings, search._bounds = postings, bounds
    return start, stop, search.rows_kneighbors(X, k, start, stop)


def _candidates_task(make_search, rare, X, k, start, stop):
    """A block's candidates, in any worker: ``(start, stop, (candidates, exact))``."""
    search = make_search()
    search.n_rows_ = X.shape[0]
    search._set_rare_postings(rare)
    return start, stop, search.block_candidates(X, k, start, stop)


def _scores_task(X, start, stop, candidates, heaps=None, indices=None, scores=None):
    """Exact scores of rows ``start..stop`` with their (sorted) candidates, in any
    worker: ``(start, stop, scores)``; or, when ``heaps`` is given, the pairs offered
    here (into ``indices``/``scores``, these rows only, and borrowed reverse heaps)
    and ``(start, stop, None)``."""
    block = rescore_pairs(X.indptr[start : stop + 1], X.indices, X.data,
                          X.indptr, X.indices, X.data, X.shape[1], candidates)  # fmt: skip
    if heaps is None:
        return start, stop, block
    _offer_both_ways(heaps, indices, scores, start, stop, candidates, block)
    return start, stop, None


def _unordered(n_jobs: int) -> Parallel:
    return Parallel(n_jobs=n_jobs, prefer="threads", return_as="generator_unordered")


def _no_progress(_rows: int) -> None:
    pass
