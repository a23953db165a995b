"""How counted terms become the weights of a trial's vector: BM25 in a vector space.

A trial's weight for a term is its Okapi BM25 term score,

    idf(t) * tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / average length)),

so repeating a word saturates instead of growing without end, and a long text's
words each weigh a little less (``b``). The vector of a field group is then divided
by a *pivoted* norm, ``norm ** power * pivot ** (1 - power)`` with ``pivot`` the
average norm: ``power`` 1 is cosine's full length normalisation, 0 none; between
them, a long detailed record is not made to look as thin as a one-line one (Singhal,
Buckley & Mitra, "Pivoted document length normalization", SIGIR 1996). Scores are
dot products of these vectors, so they stay symmetric and split exactly into
per-term parts, but they are not cosines: an average trial's vector has length 1,
a richer one more.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numba import njit


def smooth_idf(counts: sp.csr_matrix) -> np.ndarray:
    """scikit-learn's smoothed IDF, ``ln((1 + n) / (1 + df)) + 1``.

    Parameters
    ----------
    counts : csr_matrix of shape (n_docs, n_terms)

    Returns
    -------
    idf : ndarray of shape (n_terms,), dtype float32
    """
    n_docs = counts.shape[0]
    df = column_counts(counts)
    return (np.log((1 + n_docs) / (1 + df)) + 1).astype(np.float32)


def column_counts(X: sp.csr_matrix) -> np.ndarray:
    """Stored entries per column (a count matrix's document frequencies), shape
    (n_columns,), int64.

    ``np.bincount(X.indices, minlength=n_columns)`` without its int64 copy of the
    indices: at 600,000 trials the text group's counts hold about 85 million entries,
    and that copy (about 680 MB, measured) made the build's peak.
    """
    return _column_counts(X.indices, X.shape[1])


@njit(nogil=True, cache=True)
def _column_counts(indices, n_columns):
    counts = np.zeros(n_columns, dtype=np.int64)
    for column in indices:
        counts[column] += 1
    return counts


def average_length(counts: sp.csr_matrix) -> float:
    """Mean number of counted terms over the documents that have any (1.0 if none).

    Integer counts are summed in int64, as scipy's ``counts.sum(axis=1)`` sums them,
    without its int64 copy of the data.
    """
    if counts.dtype.kind not in "iu":
        return _mean_positive(np.asarray(counts.sum(axis=1)).ravel())
    return _mean_positive(_row_totals(counts.indptr, counts.data))


@njit(nogil=True, cache=True)
def _row_totals(indptr, data):
    totals = np.zeros(indptr.shape[0] - 1, dtype=np.int64)
    for row in range(indptr.shape[0] - 1):
        for p in range(indptr[row], indptr[row + 1]):
            totals[row] += data[p]
    return totals


def bm25_weights(
    counts: sp.csr_matrix, idf: np.ndarray, avg_length: float, k1: float, b: float
) -> sp.csr_matrix:
    """BM25 term scores of each document, shape and sparsity of ``counts``, float32.

    The result shares ``counts``' index arrays; only its data is new.
    """
    data = _bm25_data(
        counts.indptr, counts.indices, counts.data, np.asarray(idf, dtype=np.float32),
        np.float32(avg_length), np.float32(k1), np.float32(k1 + 1), np.float32(1 - b),
        np.float32(b),
    )  # fmt: skip
    return sp.csr_matrix((data, counts.indices, counts.indptr), counts.shape)


@njit(nogil=True, cache=True)
def _bm25_data(indptr, indices, counts, idf, avg_length, k1, k1_plus_1, one_minus_b, b):
    # One pass, no temporary the size of the matrix (at 600,000 trials each one is
    # hundreds of MB, and they made the vectoriser's peak). float32 throughout, in
    # the order numpy evaluated the formula before, so weights are unchanged.
    data = np.empty(counts.shape[0], dtype=np.float32)
    for row in range(indptr.shape[0] - 1):
        length = np.float32(0.0)
        for p in range(indptr[row], indptr[row + 1]):
            length += np.float32(counts[p])
        scaled = k1 * (one_minus_b + b * (length / avg_length))
        for p in range(indptr[row], indptr[row + 1]):
            tf = np.float32(counts[p])
            data[p] = idf[indices[p]] * tf * k1_plus_1 / (tf + scaled)
    return data


def row_norms(X: sp.csr_matrix) -> np.ndarray:
    """L2 norm of every row, shape (n_rows,), float64.

    Compiled, one pass, no temporary: scipy's ``X.multiply(X).sum(axis=1)`` built two
    matrices per call, which made most of the time of vectorising one query (about
    0.5 ms a group). The squares are summed in the data's type in row order, as
    scipy's product with a vector of ones summed them: every norm is the same to the
    bit.
    """
    X = sp.csr_matrix(X)
    return np.sqrt(_row_sums_of_squares(X.indptr, X.data).astype(np.float64))


@njit(nogil=True, cache=True)
def _row_sums_of_squares(indptr, data):
    # What scipy's sum of a row ran: numpy's add.reduceat, which starts from the
    # row's first value and adds the pairwise sum of the rest. A row's squares are
    # stored first: a product added straight to a sum may be fused into one
    # rounding, which numpy's separate product and sum never are.
    sums = np.zeros(indptr.shape[0] - 1, dtype=data.dtype)
    longest = 0
    for row in range(indptr.shape[0] - 1):
        longest = max(longest, indptr[row + 1] - indptr[row])
    squares = np.empty(longest, dtype=data.dtype)
    zero = data[:0].sum()  # 0 in the data's type
    stack = np.empty((4, 64), dtype=np.int64)  # made once: a row must not allocate
    lefts = np.empty(64, dtype=data.dtype)
    for row in range(indptr.shape[0] - 1):
        n = indptr[row + 1] - indptr[row]
        for i in range(n):
            squares[i] = data[indptr[row] + i] * data[indptr[row] + i]
        if n:
            sums[row] = squares[0] + _pairwise_sum(squares, n - 1, zero, stack, lefts)
    return sums


@njit(nogil=True, cache=True)
def _pairwise_sum(values, n, zero, stack, lefts):
    # numpy's pairwise summation (loops_utils.h) of values[1 : 1 + n], bit for bit
    # its order: blocks of up to 128 values (_block_sum), above that the two halves
    # (the first a multiple of 8 long) summed apart and then added. Walked with a
    # stack of the caller's (rows: start, length, half, right half pending): a
    # recursive function does not link from numba's on-disk cache.
    starts, lengths, halves, right_pending = stack[0], stack[1], stack[2], stack[3]
    top = 0
    starts[0], lengths[0] = 1, n
    while True:
        if lengths[top] > 128:  # split: the left half first
            half = lengths[top] // 2
            half -= half % 8
            halves[top], right_pending[top] = half, 0
            starts[top + 1], lengths[top + 1] = starts[top], half
            top += 1
            continue
        value = _block_sum(values, starts[top], lengths[top], zero)
        top -= 1
        while top >= 0 and right_pending[top]:  # a right half: add it to its left
            value = lefts[top] + value
            top -= 1
        if top < 0:
            return value
        lefts[top], right_pending[top] = value, 1  # a left half: now its right
        starts[top + 1] = starts[top] + halves[top]
        lengths[top + 1] = lengths[top] - halves[top]
        top += 1


@njit(nogil=True, cache=True)
def _block_sum(values, start, n, zero):
    if n < 8:
        total = zero  # numpy starts from 0
        for p in range(start, start + n):
            total += values[p]
        return total
    # Eight running sums, as scalars: an array of them would be allocated per row.
    r0, r1, r2, r3 = values[start], values[start + 1], values[start + 2], values[start + 3]
    r4, r5, r6, r7 = values[start + 4], values[start + 5], values[start + 6], values[start + 7]
    i = 8
    while i < n - n % 8:
        p = start + i
        r0 += values[p]
        r1 += values[p + 1]
        r2 += values[p + 2]
        r3 += values[p + 3]
        r4 += values[p + 4]
        r5 += values[p + 5]
        r6 += values[p + 6]
        r7 += values[p + 7]
        i += 8
    total = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    for p in range(start + i, start + n):
        total += values[p]
    return total


def mean_norm(X: sp.csr_matrix) -> float:
    """Average L2 norm of the non-empty rows: the pivot of :func:`pivot_normalise`."""
    return _mean_positive(row_norms(X))


def pivot_normalise(X: sp.csr_matrix, pivot: float, power: float) -> sp.csr_matrix:
    """Divide each row of ``X`` in place by ``norm ** power * pivot ** (1 - power)``."""
    norms = row_norms(X)
    scale = np.ones_like(norms)
    nonzero = norms > 0
    scale[nonzero] = 1.0 / (norms[nonzero] ** power * pivot ** (1.0 - power))
    _scale_rows(X.indptr, X.data, scale.astype(np.float32))
    return X


def extend_pivoted(
    rows: sp.csr_matrix, added: sp.csr_matrix, pivot: float, power: float
) -> sp.csr_matrix:
    """``pivot_normalise(W + added)`` from ``rows = pivot_normalise(W)``, without ``W``.

    A row divided by ``|W| ** power * pivot ** (1 - power)`` has the norm ``(|W| /
    pivot) ** (1 - power)``, so ``|W|`` follows from it when ``power < 1``; ``added``
    has no column in common with its row, so ``|W + added|`` is the root of the sum
    of the squares. A thin trial's reading is so made from its stored row and its
    prose reading alone (``FieldGroupVectorizer.prose_reading``): the same vector as
    reading its whole record again, to float32 rounding (2.1 ms instead of 3.4 for
    one registry trial: the other groups are not analysed again).

    Parameters
    ----------
    rows : csr_matrix of shape (n, n_features), dtype float32
    added : csr_matrix of shape (n, n_features), dtype float32
        Unnormalised, on columns where its row has nothing.
    pivot, power : float
        Those ``rows`` were normalised with; ``power`` below 1.

    Returns
    -------
    csr_matrix of shape (n, n_features), dtype float32
    """
    if not 0 <= power < 1:
        raise ValueError(f"rows normalised with power {power} do not keep their length")
    before = pivot * row_norms(rows) ** (1.0 / (1.0 - power))  # |W|
    after = np.sqrt(before**2 + row_norms(added) ** 2)
    divisor = np.where(after > 0, after**power * pivot ** (1.0 - power), 1.0)
    old_divisor = before**power * pivot ** (1.0 - power)
    return _scaled(rows, old_divisor / divisor) + _scaled(added, 1.0 / divisor)


def _scaled(X: sp.csr_matrix, row_scale: np.ndarray) -> sp.csr_matrix:
    data = X.data * np.repeat(row_scale.astype(np.float32), np.diff(X.indptr))
    return sp.csr_matrix((data, X.indices, X.indptr), shape=X.shape)


@njit(nogil=True, cache=True)
def _scale_rows(indptr, data, scale):
    for row in range(indptr.shape[0] - 1):
        for p in range(indptr[row], indptr[row + 1]):
            data[p] *= scale[row]


def _mean_positive(values: np.ndarray) -> float:
    positive = values[values > 0]
    return float(positive.mean()) if len(positive) else 1.0
