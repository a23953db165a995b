"""Compiled passes (numba) that make and trim postings and candidate lists.

The transpose of the vectors on several threads (each counts, then writes, its own
range of rows), the champion lists of the pruned search (each term's heaviest rows),
and the sorting and de-duplication of the candidate pairs it proposes.

A compiled function here calls only compiled functions of this file (see
:mod:`recommender.neighbours._heap_kernels`).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(nogil=True, cache=True)
def count_columns(indptr, indices, start, stop, counts):
    """Add to ``counts`` how many entries rows ``start..stop`` have in each column."""
    for p in range(indptr[start], indptr[stop]):
        counts[indices[p]] += 1


@njit(nogil=True, cache=True)
def scatter_rows(indptr, indices, data, start, stop, next_slot, out_rows, out_data):
    """Write rows ``start..stop`` into a transpose: entry (i, c) goes to position
    ``next_slot[c]`` of ``out_rows`` (as i) and ``out_data``, which then moves on."""
    for i in range(start, stop):
        for p in range(indptr[i], indptr[i + 1]):
            column = indices[p]
            slot = next_slot[column]
            out_rows[slot] = i
            out_data[slot] = data[p]
            next_slot[column] = slot + 1


@njit(nogil=True, cache=True)
def sort_candidates(candidates):
    """Sort each row of ``candidates`` ascending in place (-1 padding first)."""
    for i in range(candidates.shape[0]):
        candidates[i, :] = np.sort(candidates[i])


@njit(nogil=True, cache=True)
def mark_mutual_pairs(candidates, keys, dropped, start, stop):
    """Mark candidate j of row i (rows ``start..stop``) in ``dropped`` (a bit per
    candidate) when i is also a candidate of j and ``keys[j] > keys[i]``: that pair is
    scored once, from j's side. Returns how many were marked.

    ``keys`` must be distinct. Every row of ``candidates`` must be sorted ascending;
    nothing in it changes here, so rows may be processed side by side.
    """
    marked = 0
    for i in range(start, stop):
        for c in range(candidates.shape[1]):
            j = candidates[i, c]
            if j >= 0 and keys[j] > keys[i] and _holds(candidates[j], i):
                dropped[i, c >> 3] |= np.uint8(1 << (c & 7))
                marked += 1
    return marked


@njit(nogil=True, cache=True)
def drop_marked(candidates, dropped, start, stop):
    """Set the candidates marked in ``dropped`` to -1, rows ``start..stop``."""
    for i in range(start, stop):
        for c in range(candidates.shape[1]):
            if dropped[i, c >> 3] & (1 << (c & 7)):
                candidates[i, c] = -1


@njit(nogil=True, cache=True)
def _holds(row, value):
    # Binary search in a row sorted ascending.
    low, high = 0, row.shape[0]
    while low < high:
        mid = (low + high) // 2
        if row[mid] < value:
            low = mid + 1
        else:
            high = mid
    return low < row.shape[0] and row[low] == value


@njit(cache=True)
def truncate_postings(indptr, indices, data, max_postings):
    """Each term's ``max_postings`` heaviest postings, still in row order.

    Returns the new (indptr, indices, data); ties in weight keep the smaller rows.
    """
    n_terms = indptr.shape[0] - 1
    new_indptr = np.zeros(n_terms + 1, dtype=np.int64)
    for t in range(n_terms):
        new_indptr[t + 1] = new_indptr[t] + min(max_postings, indptr[t + 1] - indptr[t])
    new_indices = np.empty(new_indptr[-1], dtype=indices.dtype)
    new_data = np.empty(new_indptr[-1], dtype=data.dtype)
    for t in range(n_terms):
        start, stop, out = indptr[t], indptr[t + 1], new_indptr[t]
        keep = _heaviest_positions(data[start:stop], max_postings)
        for r in range(keep.shape[0]):
            new_indices[out + r] = indices[start + keep[r]]
            new_data[out + r] = data[start + keep[r]]
    return new_indptr, new_indices, new_data


@njit(nogil=True, cache=True)
def champion_postings(indptr, indices, data, n_columns, kept, max_postings):
    """``X.T`` as CSR postings from the rows of ``X``, only ``kept`` columns, each cut
    to its ``max_postings`` heaviest rows (0: no cut), still in row order.

    The same as transposing all of ``X``, emptying the other columns and applying
    truncate_postings, without ever holding the whole transpose. Stored zeros are
    dropped. Returns (indptr, indices, data), the last two possibly longer than
    indptr[-1] (the caller trims them).
    """
    t_indptr = np.zeros(n_columns + 1, dtype=np.int64)
    for p in range(indices.shape[0]):
        column = indices[p]
        if kept[column] and data[p] != 0.0:
            t_indptr[column + 1] += 1
    for c in range(n_columns):
        t_indptr[c + 1] += t_indptr[c]
    t_indices = np.empty(t_indptr[-1], dtype=np.int32)
    t_data = np.empty(t_indptr[-1], dtype=np.float32)
    fill = t_indptr[:-1].copy()
    for row in range(indptr.shape[0] - 1):
        for p in range(indptr[row], indptr[row + 1]):
            column = indices[p]
            if kept[column] and data[p] != 0.0:
                t_indices[fill[column]] = row
                t_data[fill[column]] = data[p]
                fill[column] += 1
    if max_postings <= 0:
        return t_indptr, t_indices, t_data
    # Cut each column in place: no entry is written after a later one is read.
    new_indptr = np.zeros(n_columns + 1, dtype=np.int64)
    out = 0
    for c in range(n_columns):
        start, stop = t_indptr[c], t_indptr[c + 1]
        for r in _heaviest_positions(t_data[start:stop], max_postings):
            t_indices[out] = t_indices[start + r]
            t_data[out] = t_data[start + r]
            out += 1
        new_indptr[c + 1] = out
    return new_indptr, t_indices, t_data


@njit(nogil=True, cache=True)
def _heaviest_positions(weights, count):
    """Positions of the ``count`` largest ``weights``, ascending; of equal weights the
    earlier positions are kept. A selection, not a sort: linear in len(weights)."""
    n = weights.shape[0]
    if n <= count:
        return np.arange(n)
    threshold = np.partition(weights, n - count)[n - count]
    ties = count
    for weight in weights:
        ties -= weight > threshold
    keep = np.empty(count, dtype=np.int64)
    out = 0
    for r in range(n):
        if weights[r] > threshold or (weights[r] == threshold and ties > 0):
            ties -= weights[r] == threshold
            keep[out] = r
            out += 1
    return keep
