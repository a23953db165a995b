"""Compiled inner loops (numba) for sparse dot products with top-k selection.

Why not ``X[block] @ X.T`` in scipy: that product materialises a sparse result with
nearly every trial in every row, in two passes, before any selection. Accumulating
into one dense row of scores and keeping a k-sized heap does the same arithmetic in
one pass with no intermediate matrix (about 10x faster on the registry corpus).

Here: the bounded exact search (per-block bounds of frequent terms), the pruned
search's candidate selection by block maxima, and the exact rescoring of candidates.
A compiled function here calls only compiled functions of this file (see
:mod:`recommender.neighbours._heap_kernels`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

SCORE_BLOCK = 64  # entries of a score row whose maximum is taken at once


@njit(nogil=True, cache=True)
def fill_term_bounds(t_indptr, t_indices, t_data, terms, bounds, start, stop):
    """``bounds[u, b]``: the largest weight of term ``terms[u]`` in block ``b`` of
    SCORE_BLOCK rows (0 where absent), for ``u`` in ``start..stop``."""
    for u in range(start, stop):
        term = terms[u]
        for s in range(t_indptr[term], t_indptr[term + 1]):
            b = t_indices[s] // SCORE_BLOCK
            if t_data[s] > bounds[u, b]:
                bounds[u, b] = t_data[s]


@njit(nogil=True, cache=True)
def bounded_top_k(
    q_indptr, q_indices, q_data, t_indptr, t_indices, t_data,
    x_indptr, x_indices, x_data, slots, bounds, stop_share, exclude, out_ids, out_scores,
):  # fmt: skip
    """What rows_top_k gives, bit for bit, reading only part of the frequent terms'
    postings (see bounded_scores_reaching, which this runs with no cut)."""
    bounded_scores_reaching(
        q_indptr, q_indices, q_data, t_indptr, t_indices, t_data, x_indptr, x_indices, x_data,
        slots, bounds, stop_share, np.zeros(0, dtype=np.float32), exclude, out_ids, out_scores,
    )  # fmt: skip


@njit(nogil=True, cache=True)
def bounded_scores_reaching(
    q_indptr, q_indices, q_data, t_indptr, t_indices, t_data,
    x_indptr, x_indices, x_data, slots, bounds, stop_share, cut, exclude, out_ids, out_scores,
):  # fmt: skip
    """Each query row's exact top-k (as rows_top_k gives it, bit for bit) and, when
    ``cut`` is not empty, the rows but exclude[i] whose positive score with it
    reaches their ``cut``; returns those as (row, query number) pairs.

    Exact, without reading every posting of the frequent terms. A frequent term
    (``slots[term] >= 0``) has a bound per block of SCORE_BLOCK rows,
    ``bounds[slots[term]]``: its largest weight there. Per query row: accumulate the
    other terms; score its best 2k rows by that partial score exactly, whose k-th
    score is a floor the final k-th reaches; accumulate frequent terms, rarest
    first, until what the rest could add to any row, by the bounds, is below
    ``stop_share`` of that floor (or of the block's lowest cut, when lower). A row
    can then reach the floor (or its cut) only if its partial score plus its
    block's bound does; only those rows are scored
    exactly (``_dot_rows``: the same products added in the same order as
    rows_top_k), and the best k kept, ties to the smaller row. A query row with
    fewer than k positive scores among its probes accumulates every term instead.
    Every weight must be non-negative (a largest weight bounds nothing otherwise).

    Why: on a large index a query's postings are mostly a few frequent words' (at
    600,000 rows, words in over 2% of rows hold 96% of them), and each adds little.
    """
    n_rows, k = x_indptr.shape[0] - 1, out_ids.shape[1]
    postings = (t_indptr, t_indices, t_data)
    use_cut = cut.shape[0] > 0
    lowest_cut = _block_minima(cut, bounds.shape[1]) if use_cut else cut
    lowest_stop = (stop_share * lowest_cut).astype(np.float32)
    acc = np.zeros(n_rows, dtype=np.float32)
    rest = np.zeros(bounds.shape[1], dtype=np.float32)
    dense = np.zeros(slots.shape[0], dtype=np.float32)
    block_max = np.zeros(bounds.shape[1], dtype=np.int32)
    counts = np.zeros(4096, dtype=np.int32)
    kept_ids = np.empty(n_rows, dtype=np.int32)
    kept_scores = np.empty(n_rows, dtype=np.float32)
    probes = np.empty(2 * k, dtype=np.int32)
    probe_scores = np.empty(2 * k, dtype=np.float32)
    rows, queries, found = np.empty(1024, dtype=np.int64), np.empty(1024, dtype=np.int64), 0
    for i in range(q_indptr.shape[0] - 1):
        own = exclude[i]
        frequent = _frequent_terms(q_indptr, q_indices, t_indptr, slots, i)
        for p in range(q_indptr[i], q_indptr[i + 1]):
            if slots[q_indices[p]] < 0:
                _accumulate(acc, postings, q_indices[p], q_data[p])
        _best_positive(acc, own, block_max, counts, kept_ids, kept_scores, probes, False)
        _dot_rows(q_indptr, q_indices, q_data, x_indptr, x_indices, x_data, i, probes, dense,
                  probe_scores)  # fmt: skip
        floor = np.sort(probe_scores)[k]  # the k-th largest of 2k
        if floor <= 0.0:
            # Too few rows to set a floor by: every term, as rows_top_k adds them.
            _zero_bits(acc.view(np.int32))
            for p in range(q_indptr[i], q_indptr[i + 1]):
                _accumulate(acc, postings, q_indices[p], q_data[p])
            m = _positive_entries(acc, own, kept_ids, kept_scores)
        else:
            slack = _accumulate_while_bounds_reach(
                acc, rest, q_indices, q_data, postings, slots, bounds, frequent,
                stop_share * floor, lowest_stop,
            )  # fmt: skip
            m = _rows_reaching(acc, rest, floor - slack, cut, lowest_cut, slack, own, block_max,
                               kept_ids)  # fmt: skip
            _dot_rows(q_indptr, q_indices, q_data, x_indptr, x_indices, x_data, i, kept_ids[:m],
                      dense, kept_scores[:m])  # fmt: skip
        if use_cut:
            for c in range(m):
                if kept_scores[c] != 0.0 and kept_scores[c] >= cut[kept_ids[c]]:
                    rows, queries, found = _add_pair(rows, queries, found, kept_ids[c], i)
        _best_of(kept_ids[:m], kept_scores[:m], out_ids[i], out_scores[i])
    return rows[:found].copy(), queries[:found].copy()


@njit(nogil=True, cache=True)
def _accumulate_while_bounds_reach(
    acc, rest, q_indices, q_data, postings, slots, bounds, frequent, stop, lowest_stop
):
    """Accumulate the query's ``frequent`` terms (positions in ``q_indices``) in
    order until, in every block, what the rest could add (``rest``, left set) is
    below ``stop``, or below ``lowest_stop`` there (a share of the block's lowest
    cut) when that is given and lower. Returns a slack far above the float error of
    the partial scores and the bounds.
    """
    limit = np.full(rest.shape[0], stop, dtype=np.float32)
    if lowest_stop.shape[0] > 0:
        limit = np.minimum(limit, lowest_stop)
    rest[:] = 0.0
    for p in frequent:
        _add_scaled(rest, bounds[slots[q_indices[p]]], q_data[p])
    slack = np.float32(1e-4) * (1 + stop + rest.max())
    done = 0
    while done < frequent.shape[0] and _any_reaching(rest, limit):
        p = frequent[done]
        _accumulate(acc, postings, q_indices[p], q_data[p])
        _add_scaled(rest, bounds[slots[q_indices[p]]], -q_data[p])
        done += 1
    if done == frequent.shape[0]:
        rest[:] = 0.0  # not the rounding left by the subtractions
    return slack


@njit(nogil=True, cache=True)
def _positive_entries(acc, own, out_ids, out_scores):
    """Every positive entry of ``acc`` but ``own``, in index order; resets ``acc``."""
    m = 0
    for j in range(acc.shape[0]):
        if acc[j] > 0.0 and j != own:
            out_ids[m] = j
            out_scores[m] = acc[j]
            m += 1
        acc[j] = 0.0
    return m


@njit(nogil=True, cache=True)
def _best_of(ids, scores, out_ids, out_scores):
    """The len(out_ids) best positive of ``scores`` (``ids`` ascending), best first,
    ties to the smaller id (a stable sort), -1 / 0 padding."""
    order = np.argsort(-scores, kind="mergesort")
    for r in range(out_ids.shape[0]):
        if r < order.shape[0] and scores[order[r]] > 0.0:
            out_ids[r] = ids[order[r]]
            out_scores[r] = scores[order[r]]
        else:
            out_ids[r] = -1
            out_scores[r] = 0.0


@njit(nogil=True, cache=True)
def _frequent_terms(q_indptr, q_indices, t_indptr, slots, i):
    """Positions in row i of its terms that have bounds, rarest first."""
    positions = np.empty(q_indptr[i + 1] - q_indptr[i], dtype=np.int64)
    df = np.empty(positions.shape[0], dtype=np.int64)
    n = 0
    for p in range(q_indptr[i], q_indptr[i + 1]):
        term = q_indices[p]
        if slots[term] >= 0:
            positions[n] = p
            df[n] = t_indptr[term + 1] - t_indptr[term]
            n += 1
    return positions[:n][np.argsort(df[:n], kind="mergesort")]


@njit(nogil=True, cache=True)
def _accumulate(acc, postings, term, weight):
    t_indptr, t_indices, t_data = postings
    for s in range(t_indptr[term], t_indptr[term + 1]):
        acc[t_indices[s]] += weight * t_data[s]


@njit(nogil=True, cache=True)
def _any_reaching(values, limits):
    b = 0
    while b < values.shape[0] and values[b] < limits[b]:
        b += 1
    return b < values.shape[0]


@njit(nogil=True, cache=True)
def _add_scaled(values, other, scale):
    for b in range(values.shape[0]):
        values[b] += scale * other[b]


@njit(nogil=True, cache=True)
def _rows_reaching(acc, rest, floor, cut, lowest_cut, slack, own, block_max, out):
    """Rows but ``own`` whose ``acc`` plus their block's ``rest`` reaches ``floor`` or
    (when ``cut`` is not empty) their ``cut`` less ``slack``, in row order, into
    ``out``; resets ``acc`` to zero. Returns how many.

    A row none of whose terms has been accumulated, in a block where the rest is 0,
    scores 0 and is left out whatever its cut.
    """
    bits = acc.view(np.int32)
    n, use_cut = bits.shape[0], cut.shape[0] > 0
    for b in range(block_max.shape[0]):
        block_max[b] = _max_bits(bits[b * SCORE_BLOCK : (b + 1) * SCORE_BLOCK])
    highest = block_max.view(np.float32)
    m = 0
    for b in range(block_max.shape[0]):
        need = floor - rest[b]
        if use_cut:
            need = min(need, lowest_cut[b] - slack - rest[b])
        if highest[b] >= need and (highest[b] > 0.0 or rest[b] > 0.0):
            for j in range(b * SCORE_BLOCK, min((b + 1) * SCORE_BLOCK, n)):
                reach = acc[j] + rest[b]
                if (
                    j != own
                    and (acc[j] > 0.0 or rest[b] > 0.0)
                    and (reach >= floor or (use_cut and reach >= cut[j] - slack))
                ):
                    out[m] = j
                    m += 1
    _zero_bits(bits)
    return m


@njit(nogil=True, cache=True)
def _block_minima(values, n_blocks):
    lowest = np.empty(n_blocks, dtype=values.dtype)
    for b in range(n_blocks):
        lowest[b] = values[b * SCORE_BLOCK : (b + 1) * SCORE_BLOCK].min()
    return lowest


@njit(nogil=True, cache=True)
def _add_pair(rows, queries, n, row, query):
    """Store the n-th pair, growing the arrays when full; returns them and n + 1."""
    if n == rows.shape[0]:
        rows = np.concatenate((rows, np.empty_like(rows)))
        queries = np.concatenate((queries, np.empty_like(queries)))
    rows[n] = row
    queries[n] = query
    return rows, queries, n + 1


@njit(nogil=True, cache=True)
def rows_candidates(
    q_indptr,
    q_indices,
    q_data,
    t_indptr,
    t_indices,
    t_data,
    n_rows,
    rows,
    max_terms,
    out_ids,
):
    """Best len(out_ids[i]) rows for each query row by a partial score.

    Like rows_top_k, but only a row's ``max_terms`` heaviest terms with postings
    propose candidates (0: all of them). ``rows[i]`` is the query's own row, never
    proposed. Returns, per query row, how many candidates it has (rows other than
    itself with a positive partial score, at most the number asked for). Unfilled
    candidate slots are -1; ties in partial score go to the smaller row.
    """
    n_queries = q_indptr.shape[0] - 1
    found = np.zeros(n_queries, dtype=np.int64)
    acc = np.zeros(n_rows, dtype=np.float32)
    block_max = np.zeros(-(-n_rows // SCORE_BLOCK), dtype=np.int32)
    counts = np.zeros(4096, dtype=np.int32)
    kept_ids = np.empty(n_rows, dtype=np.int32)
    kept_scores = np.empty(n_rows, dtype=np.float32)
    for i in range(n_queries):
        floor = _term_weight_floor(q_indptr, q_indices, q_data, t_indptr, i, max_terms)
        for p in range(q_indptr[i], q_indptr[i + 1]):
            term = q_indices[p]
            weight = q_data[p]
            if weight < floor:
                continue
            for s in range(t_indptr[term], t_indptr[term + 1]):
                acc[t_indices[s]] += weight * t_data[s]
        found[i] = _best_positive(acc, rows[i], block_max, counts, kept_ids, kept_scores,
                                  out_ids[i])  # fmt: skip
    return found


@njit(nogil=True, cache=True)
def _best_positive(acc, own, block_max, counts, kept_ids, kept_scores, out, reset=True):
    """The len(out) best positive entries of ``acc`` but ``own`` into ``out``, best
    first, ties to the smaller index, -1 padding; resets ``acc`` to zero unless told
    not to. Returns how many were found.

    Why neither a list of the touched rows nor a heap fed entry by entry: with
    600,000 rows and about 100,000 touched per query, following such a list back into
    ``acc`` cost more than the accumulation itself, and so does a scalar pass over
    ``acc``. Instead one pass takes each block's maximum (positive floats compare as
    their bits do as int32, which vectorises), then a floor below which no entry can
    be among the best (len(out) + 1 block maxima reach it), and only the few blocks
    reaching it are read entry by entry.
    """
    bits = acc.view(np.int32)
    n, k = bits.shape[0], out.shape[0]
    for b in range(block_max.shape[0]):
        block_max[b] = _max_bits(bits[b * SCORE_BLOCK : (b + 1) * SCORE_BLOCK])
    # The k + 1 largest block maxima are k + 1 entries, at most one of them own's.
    floor = _kth_largest_floor(block_max, counts, k + 1)
    m = 0
    for b in range(block_max.shape[0]):
        if block_max[b] >= floor:
            for j in range(b * SCORE_BLOCK, min((b + 1) * SCORE_BLOCK, n)):
                if bits[j] >= floor and j != own:
                    kept_ids[m] = j
                    kept_scores[m] = acc[j]
                    m += 1
    if reset:
        _zero_bits(bits)
    # Kept in index order, so a stable sort on score sends ties to the smaller index.
    order = np.argsort(-kept_scores[:m], kind="mergesort")
    found = min(m, k)
    for r in range(k):
        out[r] = kept_ids[order[r]] if r < found else -1
    return found


@njit(nogil=True, cache=True)
def _max_bits(bits):
    # A plain loop over a whole array, which LLVM vectorises (a fixed-width inner
    # loop over a larger array it does not).
    top = np.int32(0)
    for j in range(bits.shape[0]):
        top = max(top, bits[j])
    return top


@njit(nogil=True, cache=True)
def _zero_bits(bits):
    for j in range(bits.shape[0]):
        bits[j] = 0


@njit(nogil=True, cache=True)
def _kth_largest_floor(values, counts, k):
    """A floor that at least ``k`` of ``values`` (int32 bits of non-negative floats)
    reach, at most 1/4096 of its power of two below the k-th largest; at least 1, so
    zeros never reach it. 1 when no more than ``k`` values are positive.

    Found by a radix select on the bits: the top 12 (the exponent and four bits of
    mantissa) bucket the values, then the next 8 within the bucket holding the k-th.
    ``counts`` is scratch space of 4096 int32.
    """
    counts[:] = 0
    positive = 0
    for value in values:
        counts[value >> 19] += 1
        positive += value > 0
    if positive <= k:
        return np.int32(1)
    above, bucket = 0, 4095
    while above + counts[bucket] < k:
        above += counts[bucket]
        bucket -= 1
    counts[:256] = 0
    for value in values:
        if value >> 19 == bucket:
            counts[(value >> 11) & 255] += 1
    sub = 255
    while above + counts[sub] < k:
        above += counts[sub]
        sub -= 1
    return np.int32(max((bucket << 19) | (sub << 11), 1))


@njit(nogil=True, cache=True)
def _term_weight_floor(q_indptr, q_indices, q_data, t_indptr, i, max_terms):
    """The weight of row i's ``max_terms``-th heaviest term that has postings.

    Terms below it propose no candidates. 0 when the row has no more such terms
    than that (or max_terms is 0), so every term passes.
    """
    start, stop = q_indptr[i], q_indptr[i + 1]
    if max_terms <= 0 or stop - start <= max_terms:
        return np.float32(0.0)
    weights = np.empty(stop - start, dtype=np.float32)
    n = 0
    for p in range(start, stop):
        term = q_indices[p]
        if t_indptr[term + 1] > t_indptr[term]:
            weights[n] = q_data[p]
            n += 1
    if n <= max_terms:
        return np.float32(0.0)
    return np.partition(weights[:n], n - max_terms)[n - max_terms]


@njit(nogil=True, cache=True)
def rescore_top_k(
    q_indptr,
    q_indices,
    q_data,
    x_indptr,
    x_indices,
    x_data,
    n_features,
    candidates,
    out_ids,
    out_scores,
):
    """Exact cosines of each query row with its candidate rows; keep the best k.

    Best first, ties to the smaller row id, -1 / 0 for padding.
    """
    dense = np.zeros(n_features, dtype=np.float32)
    scores = np.zeros(candidates.shape[1], dtype=np.float32)
    for i in range(q_indptr.shape[0] - 1):
        # Candidates in row order read the matrix in memory order (fewer cache misses),
        # and a stable sort on score then breaks ties to the smaller row.
        rows = np.sort(candidates[i])
        _dot_rows(q_indptr, q_indices, q_data, x_indptr, x_indices, x_data, i, rows, dense, scores)
        _best_of(rows, scores, out_ids[i], out_scores[i])


@njit(nogil=True, cache=True)
def _dot_rows(q_indptr, q_indices, q_data, x_indptr, x_indices, x_data, i, rows, dense, out):
    """Exact dot products of query row i with each of ``rows`` (-1: 0) into ``out``.

    The query is scattered into ``dense`` (all zeros on entry and on return), so
    each candidate costs one gather per stored entry.
    """
    for p in range(q_indptr[i], q_indptr[i + 1]):
        dense[q_indices[p]] = q_data[p]
    for c in range(rows.shape[0]):
        j = rows[c]
        total = np.float32(0.0)
        if j >= 0:
            for p in range(x_indptr[j], x_indptr[j + 1]):
                total += dense[x_indices[p]] * x_data[p]
        out[c] = total
    for p in range(q_indptr[i], q_indptr[i + 1]):
        dense[q_indices[p]] = 0.0


@njit(nogil=True, cache=True)
def rescore_pairs(q_indptr, q_indices, q_data, x_indptr, x_indices, x_data, n_features, candidates):
    """Exact dot products of each query row with each of its candidate rows.

    Returns an array shaped like ``candidates`` (float32); 0 where a candidate is -1.
    Candidates in ascending order read the matrix in memory order: fewer cache misses.
    """
    dense = np.zeros(n_features, dtype=np.float32)
    scores = np.zeros(candidates.shape, dtype=np.float32)
    for i in range(q_indptr.shape[0] - 1):
        _dot_rows(
            q_indptr, q_indices, q_data, x_indptr, x_indices, x_data, i, candidates[i], dense,
            scores[i],
        )  # fmt: skip
    return scores
