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


@njit(nogil=True, cache=True)
def listed_top_k(
    q_indptr, q_indices, q_data, extra, t_indptr, t_indices, t_data,
    x_indptr, x_indices, x_data, own, lists, list_scores, allowed, use_allowed,
    out_ids, out_scores, out_proven,
):  # fmt: skip
    """Top-k for query rows that are an indexed row scaled plus terms it lacks.

    Query row i is ``a * X[own[i]] + e`` with ``e`` only on ``extra`` columns, where
    that row has nothing; ``lists[i]`` / ``list_scores[i]`` are ``X[own[i]]``'s stored
    nearest rows by its row, best first (-1 / 0 padded). A row outside the list
    scores at most ``a`` times the list's last score plus what ``e`` adds to it (0
    when the list is shorter than full: no other row has a positive score by row),
    so only the listed rows and the rows ``e``'s postings reach whose bound reaches
    the k-th score so far are scored exactly (the same products in the same order
    as :func:`rows_top_k`). ``out_proven[i]`` says the answer is the exact top-k
    given the list: false when a filter left too few candidates above the bound.
    """
    n_rows = x_indptr.shape[0] - 1
    k = out_ids.shape[1]
    width = lists.shape[1]
    acc = np.zeros(n_rows, dtype=np.float32)
    stamp = np.zeros(n_rows, dtype=np.int32)  # i + 1: reached by e; -(i + 1): listed
    touched = np.empty(n_rows, dtype=np.int32)
    heap_scores = np.zeros(k, dtype=np.float32)
    heap_ids = np.full(k, -1, dtype=np.int32)
    for i in range(q_indptr.shape[0] - 1):
        mark = np.int32(i + 1)
        start, stop = q_indptr[i], q_indptr[i + 1]
        scale = _row_scale(q_indices, q_data, extra, start, stop, x_indptr, x_data, own[i])
        floor = np.float32(0.0)
        if lists[i, width - 1] >= 0:
            floor = np.float32(scale * list_scores[i, width - 1])
        reached = 0
        for p in range(start, stop):
            term = q_indices[p]
            if extra[term]:
                weight = q_data[p]
                for s in range(t_indptr[term], t_indptr[term + 1]):
                    j = t_indices[s]
                    if stamp[j] != mark:
                        stamp[j] = mark
                        acc[j] = 0.0
                        touched[reached] = j
                        reached += 1
                    acc[j] += weight * t_data[s]
        heap_scores[:] = 0.0
        heap_ids[:] = -1
        for c in range(width):
            j = lists[i, c]
            if j < 0:
                break
            if j != own[i] and (not use_allowed or allowed[j]):
                lo, hi = x_indptr[j], x_indptr[j + 1]
                score = _sorted_dot(q_indices, q_data, start, stop, x_indices, x_data, lo, hi)
                _offer_row(heap_ids, heap_scores, j, score)
            stamp[j] = -mark
        # Rounding: a bound a little high only scores a few more rows exactly.
        slack = np.float32(1.0 + 1e-5)
        for c in range(reached):
            j = touched[c]
            if stamp[j] == -mark or j == own[i] or (use_allowed and not allowed[j]):
                continue
            if (floor + acc[j]) * slack >= heap_scores[0] or heap_ids[0] < 0:
                lo, hi = x_indptr[j], x_indptr[j + 1]
                score = _sorted_dot(q_indices, q_data, start, stop, x_indices, x_data, lo, hi)
                _offer_row(heap_ids, heap_scores, j, score)
        full = heap_ids[0] >= 0
        out_proven[i] = floor == 0.0 or (full and heap_scores[0] * slack >= floor)
        order = np.argsort(heap_ids, kind="mergesort")
        order = order[np.argsort(-heap_scores[order], kind="mergesort")]
        for r in range(k):
            out_ids[i, r] = heap_ids[order[r]]
            out_scores[i, r] = heap_scores[order[r]] if out_ids[i, r] >= 0 else 0.0


@njit(nogil=True, cache=True)
def _offer_row(heap_ids, heap_scores, row, score):
    if score > 0.0 and (heap_ids[0] < 0 or _worse(heap_scores[0], heap_ids[0], score, row)):
        heap_scores[0] = score
        heap_ids[0] = row
        _sift_down(heap_scores, heap_ids, 0)


@njit(nogil=True, cache=True)
def _sorted_dot(q_indices, q_data, start, stop, x_indices, x_data, x_start, x_stop):
    # Both rows' columns ascend: a merge adds the products in the query's term order,
    # as the accumulation over postings does, so the score is the same to the bit.
    total = np.float32(0.0)
    p, s = start, x_start
    while p < stop and s < x_stop:
        if q_indices[p] < x_indices[s]:
            p += 1
        elif q_indices[p] > x_indices[s]:
            s += 1
        else:
            total += q_data[p] * x_data[s]
            p += 1
            s += 1
    return total


@njit(nogil=True, cache=True)
def _row_scale(q_indices, q_data, extra, start, stop, x_indptr, x_data, row):
    # |query outside the extra columns| / |row|: the a of a * X[row] + e.
    outside = 0.0
    for p in range(start, stop):
        if not extra[q_indices[p]]:
            outside += float(q_data[p]) * float(q_data[p])
    own = 0.0
    for s in range(x_indptr[row], x_indptr[row + 1]):
        own += float(x_data[s]) * float(x_data[s])
    return np.sqrt(outside / own) if own > 0.0 else 0.0
