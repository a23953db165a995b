"""Ranking a few known candidates per query exactly, without a search.

An indexed trial's stored list holds the 50 trials nearest its row; a thin trial is
asked about with its prose also read into the list groups (a different vector from
its row), so its related trials are those 50 ordered by that vector
(:meth:`recommender.index.TrialIndex.similar`, the export). Scoring 50 rows is a
fraction of a search over the postings.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recommender.neighbours._arrays import NO_NEIGHBOUR
from recommender.neighbours._scoring_kernels import rescore_pairs


def rank_candidates(
    vectors: sp.csr_matrix, candidates: np.ndarray, queries: sp.csr_matrix
) -> tuple[np.ndarray, np.ndarray]:
    """Each query's candidates, best first, scored by dot product with the query.

    Parameters
    ----------
    vectors : csr_matrix of shape (n_rows, n_features), float32
        The indexed rows.
    candidates : ndarray of shape (n_queries, k), int
        Rows to rank per query, :data:`NO_NEIGHBOUR` where there is none.
    queries : csr_matrix of shape (n_queries, n_features), float32

    Returns
    -------
    rows : ndarray of shape (n_queries, k), int32
        The candidates by descending score, ties to the smaller row (as
        :meth:`CosineNeighbours.kneighbors` breaks them), padding last.
    scores : ndarray of shape (n_queries, k), float32
        Their scores; 0 where padded.
    """
    candidates = np.asarray(candidates)
    if candidates.ndim != 2 or candidates.shape[0] != queries.shape[0]:
        raise ValueError("candidates must have one row per query")
    present = candidates != NO_NEIGHBOUR
    queries = sp.csr_matrix(queries, dtype=np.float32)
    queries.sum_duplicates()  # the kernel scatters each query: a column once
    scores = rescore_pairs(
        queries.indptr, queries.indices, queries.data,
        np.asarray(vectors.indptr), np.asarray(vectors.indices), np.asarray(vectors.data),
        vectors.shape[1], np.ascontiguousarray(candidates, dtype=np.int32),
    )  # fmt: skip
    # Sort keys, last one first: padding after every candidate, then descending
    # score, then the smaller row.
    order = np.lexsort((np.where(present, candidates, 0), -scores, ~present), axis=1)
    ranked = np.take_along_axis(candidates, order, axis=1).astype(np.int32)
    return ranked, np.take_along_axis(scores, order, axis=1)
