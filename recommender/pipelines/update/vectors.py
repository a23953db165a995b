"""The updated matrix: kept rows copied from the index, new and rewritten studies
vectorised with the index's vocabulary and IDF (so no other trial's vector moves).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from joblib import Parallel, delayed
from numba import njit

from recommender.index import TrialIndex, UpdatedRecords
from recommender.infra.tasks import COPY_ROWS_PER_TASK, row_blocks
from recommender.neighbours import as_float32_csr
from recommender.pipelines.update.changes import Changes
from recommender.text import FieldGroupVectorizer


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
        delayed(copy)(a, b) for a, b in row_blocks(len(source), n_jobs, COPY_ROWS_PER_TASK)
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
