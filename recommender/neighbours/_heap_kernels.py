"""Compiled top-k by heap (numba): exact search from postings or by a pass over rows,
and the merging of neighbour lists.

A k-sized heap holds the best so far, worst at the root, under one total order:
higher score first, ties to the smaller row. Every kernel here keeps that order, so
lists made by different paths (postings, row scans, offers of pairs to both rows)
agree entry for entry.

A compiled function here calls only compiled functions of this file: numba's cache
of a function is refreshed when its own file changes, not when a file it calls into
does (``tests/test_architecture.py`` holds the rule).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(nogil=True, cache=True)
def _worse(score_a, id_a, score_b, id_b):
    # The order of a top-k list: higher score first, ties to the smaller row.
    return score_a < score_b or (score_a == score_b and id_a > id_b)


@njit(nogil=True, cache=True)
def _sift_down(heap_scores, heap_ids, pos):
    # A heap of the kept, worst at the root (lowest score, then largest row), so that
    # of rows tied at the k-th score the larger ones leave first.
    size = heap_scores.shape[0]
    while True:
        worst = pos
        for child in (2 * pos + 1, 2 * pos + 2):
            if child < size and _worse(
                heap_scores[child], heap_ids[child], heap_scores[worst], heap_ids[worst]
            ):
                worst = child
        if worst == pos:
            return
        heap_scores[pos], heap_scores[worst] = heap_scores[worst], heap_scores[pos]
        heap_ids[pos], heap_ids[worst] = heap_ids[worst], heap_ids[pos]
        pos = worst


@njit(nogil=True, cache=True)
def _select_top_k(acc, allowed, use_allowed, exclude, out_ids, out_scores):
    """Best len(out_ids) positive entries of acc, best first, ties to the smaller id.

    Resets acc to zero as it scans, ready for the next row.
    """
    k = out_ids.shape[0]
    heap_scores = np.zeros(k, dtype=np.float32)
    heap_ids = np.full(k, -1, dtype=np.int32)
    for j in range(acc.shape[0]):
        score = acc[j]
        if score != 0.0:
            acc[j] = 0.0
            # Scanning ids in ascending order, an equal score never displaces a kept
            # one and a better one displaces the largest of the worst kept, so ties
            # go to the smaller id.
            if score > heap_scores[0] and j != exclude and (not use_allowed or allowed[j]):
                heap_scores[0] = score
                heap_ids[0] = j
                _sift_down(heap_scores, heap_ids, 0)
    order = np.argsort(heap_ids, kind="mergesort")
    order = order[np.argsort(-heap_scores[order], kind="mergesort")]
    for r in range(k):
        out_ids[r] = heap_ids[order[r]]
        out_scores[r] = heap_scores[order[r]]
        if out_ids[r] < 0:
            out_scores[r] = 0.0


@njit(nogil=True, cache=True)
def rows_top_k(
    q_indptr,
    q_indices,
    q_data,
    t_indptr,
    t_indices,
    t_data,
    n_rows,
    exclude,
    allowed,
    use_allowed,
    out_ids,
    out_scores,
):
    """Top-k of ``Q @ X.T`` for every row of ``Q`` (CSR), given ``X.T`` as CSR postings.

    exclude[i] is a column to leave out of row i (-1 for none).
    """
    acc = np.zeros(n_rows, dtype=np.float32)
    for i in range(q_indptr.shape[0] - 1):
        for p in range(q_indptr[i], q_indptr[i + 1]):
            term = q_indices[p]
            weight = q_data[p]
            for s in range(t_indptr[term], t_indptr[term + 1]):
                acc[t_indices[s]] += weight * t_data[s]
        _select_top_k(acc, allowed, use_allowed, exclude[i], out_ids[i], out_scores[i])


@njit(nogil=True, cache=True)
def _offer(heap_ids, heap_scores, row, other, score):
    if score > 0.0 and _worse(heap_scores[row, 0], heap_ids[row, 0], score, other):
        heap_scores[row, 0] = score
        heap_ids[row, 0] = other
        _sift_down(heap_scores[row], heap_ids[row], 0)


@njit(nogil=True, cache=True)
def offer_pairs(own_ids, own_scores, rev_ids, rev_scores, rows, candidates, scores):
    """Offer each exactly scored pair (rows[i], candidates[i, c]) to both its rows.

    ``own_*`` (n_rows, k) keep each row's best among its own candidates, ``rev_*``
    its best among the rows that had it as a candidate; both are heaps with the
    weakest at column 0 (start: -1 / 0). A row's candidates are distinct, so neither
    heap gets a row twice. The order is total (score, then the smaller row), so the
    result does not depend on the order in which blocks come in.

    Returns a sum of no meaning, only so that the compiler keeps the loads that bring
    each row's reverse heaps into the cache before its pairs are offered: those loads
    do not wait on each other, while an offer waits on its heap's root and a
    mispredicted branch on it discards the loads behind it. At 600,000 rows (heaps
    of 240 MB) this halved the time of the offers.
    """
    k = rev_ids.shape[1]
    touched = np.float32(0.0)
    for i in range(candidates.shape[0]):
        row = rows[i]
        for c in range(candidates.shape[1]):
            other = candidates[i, c]
            if other >= 0:
                for column in range(0, k, 16):  # one load per 64-byte cache line
                    touched += rev_scores[other, column] + np.float32(rev_ids[other, column])
        for c in range(candidates.shape[1]):
            other = candidates[i, c]
            if other >= 0:
                _offer(own_ids, own_scores, row, other, scores[i, c])
                _offer(rev_ids, rev_scores, other, row, scores[i, c])
    return touched


@njit(nogil=True, cache=True)
def merge_lists(own_ids, own_scores, rev_ids, rev_scores):
    """Each row's best of its two heaps into ``own_*``: best first, ties to the smaller
    row, each row once (a pair scored from both sides keeps its higher score), -1 / 0
    padding."""
    k = own_ids.shape[1]
    ids = np.empty(2 * k, dtype=own_ids.dtype)
    scores = np.empty(2 * k, dtype=own_scores.dtype)
    kept_ids = np.empty(2 * k, dtype=own_ids.dtype)
    kept_scores = np.empty(2 * k, dtype=own_scores.dtype)
    for i in range(own_ids.shape[0]):
        ids[:k] = own_ids[i]
        ids[k:] = rev_ids[i]
        scores[:k] = own_scores[i]
        scores[k:] = rev_scores[i]
        by_id = np.argsort(ids, kind="mergesort")
        n = 0
        for r in by_id:
            if ids[r] < 0:
                continue
            if n > 0 and kept_ids[n - 1] == ids[r]:
                kept_scores[n - 1] = max(kept_scores[n - 1], scores[r])
            else:
                kept_ids[n] = ids[r]
                kept_scores[n] = scores[r]
                n += 1
        order = np.argsort(-kept_scores[:n], kind="mergesort")
        for r in range(k):
            if r < n:
                own_ids[i, r] = kept_ids[order[r]]
                own_scores[i, r] = kept_scores[order[r]]
            else:
                own_ids[i, r] = -1
                own_scores[i, r] = 0.0


@njit(nogil=True, cache=True)
def scan_top_k(
    x_indptr, x_indices, x_data, qt_indptr, qt_queries, qt_data, exclude, out_ids, out_scores
):
    """Top-k of ``Q @ X.T`` by one pass over the rows of ``X``, for a few queries.

    ``qt_*`` is ``Q.T`` as CSR: for each term, the queries containing it and their
    weights. Needs no postings. Gives what rows_top_k gives, bit for bit: each score
    adds the same products (query weight times row weight) in the same order (terms
    ascending), and rows come in ascending order, so ties go to the smaller row.
    exclude[q] is a row to leave out of query q's list (-1 for none).
    """
    n_queries, k = out_ids.shape
    acc = np.zeros(n_queries, dtype=np.float32)
    seen = np.full(n_queries, -1, dtype=np.int64)
    touched = np.empty(n_queries, dtype=np.int64)
    heap_scores = np.zeros((n_queries, k), dtype=np.float32)
    heap_ids = np.full((n_queries, k), -1, dtype=np.int32)
    for j in range(x_indptr.shape[0] - 1):
        count = 0
        for p in range(x_indptr[j], x_indptr[j + 1]):
            term = x_indices[p]
            for s in range(qt_indptr[term], qt_indptr[term + 1]):
                q = qt_queries[s]
                if seen[q] != j:
                    seen[q] = j
                    touched[count] = q
                    count += 1
                acc[q] += qt_data[s] * x_data[p]
        for c in range(count):
            q = touched[c]
            score = acc[q]
            acc[q] = 0.0
            if score > heap_scores[q, 0] and j != exclude[q]:
                heap_scores[q, 0] = score
                heap_ids[q, 0] = j
                _sift_down(heap_scores[q], heap_ids[q], 0)
    for q in range(n_queries):
        order = np.argsort(heap_ids[q], kind="mergesort")
        order = order[np.argsort(-heap_scores[q][order], kind="mergesort")]
        for r in range(k):
            out_ids[q, r] = heap_ids[q, order[r]]
            out_scores[q, r] = heap_scores[q, order[r]] if out_ids[q, r] >= 0 else 0.0
