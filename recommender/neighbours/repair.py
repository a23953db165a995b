"""Neighbour lists brought up to date after some rows changed, without a full search.

What ``recommender update`` runs once the new vectors are known (see
:mod:`recommender.pipelines.update`): a new or rewritten row gets an exact search; a
row whose list held a changed or removed row, or which a new row now beats the list's
k-th entry for, is *merged* (its surviving entries and those newcomers scored exactly,
the best ``k`` kept); every other list is carried over, renumbered. A merge is the
true top-``k`` whenever its k-th entry still scores at least the old k-th (or the old
list was not full); otherwise the row is searched exactly. Scores come from the same
compiled kernels as ``build``, so the lists equal those of an exact rebuild with the
same vocabulary, up to the order of exactly tied scores at the k-th place.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from joblib import Parallel, delayed
from numba import njit

from recommender.infra.tasks import COPY_ROWS_PER_TASK, row_blocks
from recommender.neighbours._arrays import NO_NEIGHBOUR, as_float32_csr
from recommender.neighbours._scoring_kernels import rescore_top_k
from recommender.neighbours.search import CosineNeighbours

# Candidates kept from the sparse product are re-scored exactly by the kernel; this
# margin only guards the cut against rounding, it never decides a list.
_SCORE_MARGIN = 1e-5


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
        for a, b in row_blocks(len(stable), search.n_jobs, COPY_ROWS_PER_TASK)
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

    tasks = [delayed(block)(a, b) for a, b in row_blocks(len(fresh), search.n_jobs)]
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
        for a, b in row_blocks(len(targets), n_jobs)
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

    tasks = [delayed(block)(a, b) for a, b in row_blocks(len(rows), search.n_jobs)]
    for a, block_ids, block_scores in Parallel(n_jobs=search.n_jobs, prefer="threads")(tasks):
        ids[a : a + len(block_ids)], scores[a : a + len(block_ids)] = block_ids, block_scores
    return ids, scores
