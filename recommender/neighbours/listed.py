"""Top-k for a query that extends an indexed row, starting from that row's stored list.

A thin trial is asked about with its row plus its prose read into the condition and
intervention groups, where its row has nothing (``recommender.index.asked``). Such a
query is ``a * X[own] + e``: its score with row ``j`` is ``a`` times the row's score
plus what the extra terms ``e`` add. The row's stored list gives the first part for
its best rows, and bounds it for every other (at most ``a`` times the list's last
score), so an exact search of the whole index is needed only when a filter leaves
too few listed rows above that bound. The extra terms are few and their postings
short (only trials with lists have them), so for a top 10 the answer costs a few
dozen exact dot products instead of reading every posting of the row's text: about
0.4 ms instead of 3-4 on the registry corpus (``docs/benchmarks.md``). For a ``k``
near the list's length its last score is too near the k-th to bound much, and most
rows the extra terms reach are scored (slower than exact search at ``k`` = the list's
length: callers search exactly then).

The answer is the exact top-k when the stored list holds the row's true best rows by
row (tests: bit for bit); the build's lists are approximate (recall@10 0.998), and on
the registry corpus the answers' recall@10 against exact search is 0.9992.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recommender.neighbours._arrays import as_float32_csr
from recommender.neighbours._heap_kernels import listed_top_k
from recommender.neighbours.search import CosineNeighbours


def kneighbors_from_lists(
    search: CosineNeighbours,
    rows: sp.csr_matrix,
    Q: sp.spmatrix,
    k: int,
    *,
    own: np.ndarray,
    lists: np.ndarray,
    list_scores: np.ndarray,
    extra: np.ndarray,
    allowed: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` indexed rows for query rows that each extend an indexed row.

    Parameters
    ----------
    search : CosineNeighbours
        The index's search (its postings; the exact search of the queries whose
        answer the lists cannot prove).
    rows : csr_matrix of shape (n_rows, n_features), dtype float32
        The indexed rows, columns ascending in each row.
    Q : sparse matrix of shape (n_queries, n_features)
        Query row ``i`` is ``a * rows[own[i]] + e``, ``a > 0``, with ``e`` only on
        ``extra`` columns (where ``rows[own[i]]`` has nothing); each column once.
    k : int
        Results per query.
    own : ndarray of shape (n_queries,), dtype int
        The row each query extends; never among its results.
    lists, list_scores : ndarrays of shape (n_queries, width), int32 and float32
        The stored nearest rows of ``rows[own[i]]`` by its row and their scores, best
        first, -1 / 0 padded (a list shorter than ``width`` says no other row scores
        above 0).
    extra : ndarray of shape (n_features,), dtype bool
    allowed : ndarray of shape (n_rows,), dtype bool, optional
        Only rows marked True may be returned.

    Returns
    -------
    indices : ndarray of shape (n_queries, k), dtype int32
    scores : ndarray of shape (n_queries, k), dtype float32
        As :meth:`CosineNeighbours.kneighbors` gives them, best first, ties to the
        smaller row, -1 / 0 padded.
    """
    if not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    Q = as_float32_csr(Q)
    Q.sort_indices()
    own = np.asarray(own, dtype=np.int64)
    lists = np.asarray(lists, dtype=np.int32)
    list_scores = np.asarray(list_scores, dtype=np.float32)
    if lists.shape != list_scores.shape or lists.shape[0] != Q.shape[0] or len(own) != Q.shape[0]:
        raise ValueError("Q, own, lists and list_scores must have one row per query")
    use_allowed = allowed is not None
    if allowed is None:
        allowed = np.ones(0, dtype=np.bool_)
    out_ids = np.empty((Q.shape[0], k), dtype=np.int32)
    out_scores = np.empty((Q.shape[0], k), dtype=np.float32)
    proven = np.empty(Q.shape[0], dtype=np.bool_)
    P = search.postings_
    # Plain views of mapped arrays (numba compiles for ndarrays, not np.memmap).
    x = [np.asarray(a) for a in (rows.indptr, rows.indices, rows.data)]
    listed_top_k(
        Q.indptr, Q.indices, Q.data, np.asarray(extra, dtype=np.bool_),
        P.indptr, P.indices, P.data, *x,
        own, lists, list_scores, allowed, use_allowed, out_ids, out_scores, proven,
    )  # fmt: skip
    unproven = np.flatnonzero(~proven)
    if len(unproven):
        out_ids[unproven], out_scores[unproven] = search.kneighbors(
            Q[unproven], k, exclude=own[unproven], allowed=None if not use_allowed else allowed
        )
    return out_ids, out_scores
