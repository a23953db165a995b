"""Why each result of one query scored what it did, for all results at once.

:meth:`TrialIndex.explain` answers for one result, with a dozen small NumPy calls per
field group; a response of ``k`` results paid that ``k`` times (about two thirds of
the service's time per request). :meth:`Explainer.explain_results` merges the query
with every result's row in one compiled pass (:func:`explain_kernel`), keeping per
result and field group the score share and the best terms, and gives the same answer
(same groups, terms and order) in a fixed handful of NumPy calls whatever ``k``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numba import njit


class Explainer:
    """Per-field-group explanations of the scores of results against one query.

    Parameters
    ----------
    vectors : csr_matrix of shape (n, n_features), dtype float32
        The index's trial vectors; its arrays are read, never copied.
    group_offsets : ndarray of shape (n_groups + 1,), dtype int64
        Group ``g`` owns columns ``group_offsets[g]:group_offsets[g + 1]``
        (``FieldGroupVectorizer.offsets_``).
    group_names : sequence of str, length n_groups
    feature_names : ndarray of shape (n_features,), dtype object
        Each column's term.
    shown : ndarray of shape (n_features,), dtype bool, optional
        The columns an explanation may list (``recommender.text.readable_mask``); the
        others still count in their group's score. All by default.
    """

    def __init__(
        self,
        vectors: sp.csr_matrix,
        group_offsets: np.ndarray,
        group_names: list[str],
        feature_names: np.ndarray,
        shown: np.ndarray | None = None,
    ) -> None:
        if len(group_offsets) != len(group_names) + 1:
            raise ValueError("group_offsets must have one more entry than group_names")
        # Plain ndarray views of the (memory-mapped) arrays: indexing a np.memmap
        # wraps every result in a new memmap object, which costs more than the read.
        self.indptr_ = np.asarray(vectors.indptr)
        self.indices_ = np.asarray(vectors.indices)
        self.data_ = np.asarray(vectors.data)
        self.group_offsets_ = np.asarray(group_offsets, dtype=np.int64)
        self.group_names_ = list(group_names)
        self.feature_names_ = feature_names
        self.shown_ = (
            np.ones(len(feature_names), dtype=bool) if shown is None else np.asarray(shown, bool)
        )
        if self.shown_.shape != (len(feature_names),):
            raise ValueError("shown must have one entry per feature name")

    def query_row(self, position: int) -> tuple[np.ndarray, np.ndarray]:
        """Columns and weights of an indexed trial's vector (a query for its neighbours)."""
        start, stop = self.indptr_[position], self.indptr_[position + 1]
        return self.indices_[start:stop], self.data_[start:stop]

    def explain_results(
        self,
        query_indices: np.ndarray,
        query_data: np.ndarray,
        positions: np.ndarray,
        n_terms: int = 3,
        decimals: int | None = None,
    ) -> list[list[dict[str, object]]]:
        """For each result, its field groups' shares of the score and their top terms.

        Parameters
        ----------
        query_indices : ndarray of shape (nnz,), int
            The query vector's columns, no repeats (sorted or not).
        query_data : ndarray of shape (nnz,), float32
            Its weights, in the same order.
        positions : ndarray of shape (k,), int
            Rows of the results.
        n_terms : int, default 3
            Terms listed per field group.
        decimals : int, optional
            Round the scores to this many decimals (after ordering by the exact ones).

        Returns
        -------
        list of length k of list of dict
            Per result, ``{"field", "score", "terms"}`` per group sharing a term with
            the query, largest score first; the scores add up to the result's score.
            ``terms`` are the group's ``n_terms`` shown terms of largest share, its
            phrases before its words (none when every shared term is one not shown).
        """
        positions = np.asarray(positions, dtype=np.int64)
        k = len(positions)
        if k == 0 or len(query_indices) == 0:
            return [[] for _ in range(k)]
        order = np.argsort(query_indices, kind="stable")
        groups, sums, counts, top = explain_kernel(
            self.indptr_,
            self.indices_,
            self.data_,
            positions,
            np.asarray(query_indices, dtype=self.indices_.dtype)[order],
            np.asarray(query_data, dtype=np.float32)[order],
            self.group_offsets_,
            self.shown_,
            n_terms,
        )
        return self._assemble(groups, sums, counts, top, decimals)

    def _assemble(
        self,
        groups: np.ndarray,
        sums: np.ndarray,
        counts: np.ndarray,
        top: np.ndarray,
        decimals: int | None,
    ) -> list[list[dict[str, object]]]:
        # Already in display order (explain_kernel): one pass of Python over what is shown.
        if decimals is not None:
            sums = np.round(sums.astype(np.float64), decimals)
        terms = self.feature_names_[top[top >= 0]].tolist()
        listed = (top >= 0).sum(axis=2).tolist()
        names, explained, cursor = self.group_names_, [], 0
        for result_groups, totals, result_counts, result_listed in zip(
            groups.tolist(), sums.tolist(), counts.tolist(), listed, strict=True
        ):
            result = []
            for group, total, count, n in zip(
                result_groups, totals, result_counts, result_listed, strict=True
            ):
                if count:
                    shared = _phrases_first(terms[cursor : cursor + n])
                    result.append({"field": names[group], "score": total, "terms": shared})
                    cursor += n
            explained.append(result)
        return explained


def _phrases_first(terms: list[str]) -> list[str]:
    """``terms`` (largest share first) with the phrases before the single words."""
    return sorted(terms, key=lambda term: " " not in term)  # stable: shares order each


@njit(nogil=True, cache=True)
def explain_kernel(
    indptr, indices, data, positions, query_cols, query_vals, group_offsets, shown, n_terms
):
    """Per result and field group: score share, shared-term count, best ``n_terms`` shown
    columns (``shown[col]``).

    ``query_cols`` must be sorted and unique. A row whose columns are sorted (every
    row a build writes) is merged with the query in one pass; any other row is
    searched column by column, so the answer never depends on the order.

    Returns
    -------
    groups : ndarray of shape (k, n_groups), int64
        Per result, the field groups by score share, largest first (ties: group
        order); the other arrays are in this order.
    sums : ndarray of shape (k, n_groups), float32
        Sum of query weight times row weight over the group's shared columns.
    counts : ndarray of shape (k, n_groups), int64
        How many columns the query and the result share in the group.
    top : ndarray of shape (k, n_groups, n_terms), int64
        The shown shared columns of largest product, largest first (ties: lower
        column first), -1 padded.
    """
    k, n_groups, n_query = positions.shape[0], group_offsets.shape[0] - 1, query_cols.shape[0]
    sums = np.zeros((k, n_groups), dtype=np.float32)
    counts = np.zeros((k, n_groups), dtype=np.int64)
    top = np.full((k, n_groups, n_terms), -1, dtype=np.int64)
    best = np.zeros((k, n_groups, n_terms), dtype=np.float32)
    for i in range(k):
        start, stop = indptr[positions[i]], indptr[positions[i] + 1]
        row_sorted = True
        for j in range(start + 1, stop):
            if indices[j] <= indices[j - 1]:
                row_sorted = False
                break
        a, j = 0, start
        while j < stop and a < n_query:
            col = indices[j]
            if row_sorted:
                if col < query_cols[a]:
                    j += 1
                    continue
                if col > query_cols[a]:
                    a += 1
                    continue
                at = a
                a += 1
            else:
                at = np.searchsorted(query_cols, col)
                if at >= n_query or query_cols[at] != col:
                    j += 1
                    continue
            value = query_vals[at] * data[j]
            g = 0
            while col >= group_offsets[g + 1]:  # a handful of groups: a scan is quickest
                g += 1
            sums[i, g] += value
            counts[i, g] += 1
            if shown[col]:
                _keep_best(top, best, i, g, col, value)
            j += 1
    groups = np.empty((k, n_groups), dtype=np.int64)
    for i in range(k):
        groups[i] = np.argsort(-sums[i], kind="mergesort")  # stable
    return groups, _take_rows(sums, groups), _take_rows(counts, groups), _take_rows(top, groups)


@njit(nogil=True, cache=True)
def _take_rows(values, order):
    # values[i, order[i]] for each i (numba has no take_along_axis).
    out = np.empty_like(values)
    for i in range(order.shape[0]):
        for r in range(order.shape[1]):
            out[i, r] = values[i, order[i, r]]
    return out


@njit(nogil=True, cache=True)
def _keep_best(top, best, i, g, col, value):
    # Insertion into the short list top[i, g], best first; column -1 is an empty place.
    n = top.shape[2]
    place = n
    for t in range(n):
        if top[i, g, t] < 0 or value > best[i, g, t]:
            place = t
            break
        if value == best[i, g, t] and col < top[i, g, t]:
            place = t
            break
    if place == n:
        return
    for t in range(n - 1, place, -1):
        top[i, g, t], best[i, g, t] = top[i, g, t - 1], best[i, g, t - 1]
    top[i, g, place], best[i, g, place] = col, value
