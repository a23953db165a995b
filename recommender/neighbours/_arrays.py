"""Array conventions shared by every search: the padding of neighbour lists, the
CSR form the kernels read, and the transpose (postings) made on every core.
"""

from __future__ import annotations

import itertools

import numpy as np
import scipy.sparse as sp
from joblib import Parallel, delayed

from recommender.infra import worker_count
from recommender.neighbours._postings_kernels import count_columns, scatter_rows

NO_NEIGHBOUR = -1


def as_float32_csr(X: sp.spmatrix) -> sp.csr_matrix:
    """``X`` as CSR float32 with int32-or-int64 indices, sorted, without copying if it can."""
    if not sp.issparse(X):
        raise TypeError(f"expected a scipy sparse matrix, got {type(X).__name__}")
    if not (isinstance(X, sp.csr_matrix) and X.dtype == np.float32):
        # Only when needed: a new object forgets that its indices were found sorted,
        # and checking again costs a pass over every entry (once per block of rows).
        X = sp.csr_matrix(X, dtype=np.float32)
    if not X.has_sorted_indices:
        X.sort_indices()
    return X


def transposed(X: sp.csr_matrix, n_jobs: int = -1) -> sp.csr_matrix:
    """``X.T`` as CSR (what ``X.T.tocsr()`` gives, same dtypes), made on threads.

    Each thread counts, then writes, the entries of its own range of rows; a
    column's entries from an earlier range go first, so each keeps row order.
    About 1.7x scipy's single-threaded conversion on 2 cores (105 million entries).
    """
    n_rows, n_columns = X.shape
    threads = worker_count(n_jobs)
    cuts = np.searchsorted(X.indptr, np.linspace(0, X.nnz, threads + 1)[1:-1])
    ends = [0, *cuts.tolist(), n_rows]
    parts = list(itertools.pairwise(ends))
    counts = np.zeros((len(parts), n_columns), dtype=np.int64)
    work = (
        delayed(count_columns)(X.indptr, X.indices, a, b, counts[t])
        for t, (a, b) in enumerate(parts)
    )
    Parallel(n_jobs=threads, backend="threading")(work)
    indptr = np.zeros(n_columns + 1, dtype=np.int64)
    np.cumsum(counts.sum(axis=0), out=indptr[1:])
    starts = indptr[:-1] + np.cumsum(counts, axis=0) - counts
    small = max(X.nnz, n_rows, n_columns) <= np.iinfo(np.int32).max
    index_dtype = np.int32 if small else np.int64  # as scipy chooses
    rows = np.empty(X.nnz, dtype=index_dtype)
    data = np.empty(X.nnz, dtype=X.dtype)
    work = (
        delayed(scatter_rows)(X.indptr, X.indices, X.data, a, b, starts[t], rows, data)
        for t, (a, b) in enumerate(parts)
    )
    Parallel(n_jobs=threads, backend="threading")(work)
    return sp.csr_matrix(
        (data, rows, indptr.astype(index_dtype)), shape=(n_columns, n_rows), copy=False
    )
