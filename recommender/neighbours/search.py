"""Top-k neighbours by dot product over sparse rows (the vectoriser's pivoted vectors).

Scores for a block of query rows are accumulated term by term from the *postings*
(``X.T`` in CSR form: for each term, the trials that contain it) into one dense row
of scores, and a k-sized heap keeps the best. This is the sparse product
``Q @ X.T`` with the selection fused in, so no N x N matrix, and not even a sparse
block of it, is ever held. Blocks of rows run in parallel on joblib threads; the
compiled kernels release the GIL, so threads share the matrix instead of copying it.

:meth:`CosineNeighbours.all_kneighbors` gives every row's list: exactly (``"exact"``,
every term accumulated) or, by default, through candidates that each row's heaviest
rare terms propose and that are then scored exactly (``"pruned"``, see
:mod:`recommender.neighbours._all_pairs`).

:meth:`CosineNeighbours.kneighbors` of a search fitted on the rows (the update's
searches, the evaluation's) is exact too, but reads only part of the frequent terms'
postings: each term in over 2% of rows keeps its largest weight in every block of 64
rows; a query accumulates its other terms, scores its best 2k rows by that partial
score exactly (their k-th score is a floor the true k-th reaches), then accumulates
frequent terms, rarest first, until what the rest could add in any block is below 40%
of that floor. Only rows whose partial score plus their block's bound reaches the floor
are scored exactly, adding the same products in the same order as the full
accumulation, so the lists are the same bit for bit (at 600,000 rows, about 6 ms a row
instead of 10-14). A loaded index's search (the service's) has no rows at hand and
reads every posting.

The inner loops avoid what made them slow: a row's partial scores are accumulated
with no bookkeeping of which rows they touched, then its best candidates are found by
block maxima over the whole score row (a vectorised pass at memory speed), and
candidates are rescored in row order. On the registry corpus (114,702 trials, k = 50,
2 threads) this keeps recall@10 0.999 and recall@50 0.986 of the exact lists (1,000
random rows); ``docs/benchmarks.md`` has the trade-off and the scaling measured.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
from joblib import Parallel, delayed

from recommender.neighbours._all_pairs import _no_progress, all_exact, all_pruned
from recommender.neighbours._arrays import NO_NEIGHBOUR, as_float32_csr, transposed
from recommender.neighbours._heap_kernels import rows_top_k
from recommender.neighbours._postings_kernels import (
    champion_postings,
    count_columns,
    sort_candidates,
    truncate_postings,
)
from recommender.neighbours._scoring_kernels import (
    SCORE_BLOCK,
    bounded_scores_reaching,
    bounded_top_k,
    fill_term_bounds,
    rescore_top_k,
    rows_candidates,
)

# Held while a search makes its postings or bounds on first use, so that threads
# searching at once make them once (reentrant: the bounds are made from the postings).
_MAKING = threading.RLock()

# Exact search (kneighbors of a fitted search): terms in more than this share of rows
# get per-block bounds, and are read until the bounds of those left are below this
# share of the k-th score (tuned at 600,000 rows, docs/benchmarks.md).
BOUNDED_DF = 0.02

BOUNDED_STOP = 0.4


class CosineNeighbours:
    """Exact cosine top-k search over unit-norm sparse rows.

    Parameters
    ----------
    method : {"pruned", "exact"}, default "pruned"
        How :meth:`all_kneighbors` finds candidates (see the module docstring);
        :meth:`kneighbors` is always exact.
    frequent_df : float, default 0.1
        For ``"pruned"``: prunable terms in more than this share of rows do not
        propose candidates (they still count in every score).
    candidates : int or None, default None
        For ``"pruned"``: candidates scored exactly per row; None means
        ``max(5 * k, 100)``.
    query_terms : int or None, default 50
        For ``"pruned"``: only this many of a row's heaviest terms (among those not
        pruned as frequent) propose candidates; None means all of them.
    max_postings : int or None, default 5000
        For ``"pruned"``: each term proposes only the rows where it weighs most, at
        most this many (its "champion list"), which bounds the work per row however
        large the corpus grows; None means every row containing it.
    prunable : ndarray of shape (n_features,), dtype bool, optional
        For ``"pruned"``: the columns that may be left out when frequent (long free
        text, where frequent words carry little); None means every column.
    block_size : int, default 512
        Query rows per parallel task.
    n_jobs : int, default -1
        Threads used by :meth:`all_kneighbors`; -1 uses every core.

    Attributes
    ----------
    n_rows_ : int
        Number of indexed rows.
    postings_ : csr_matrix of shape (n_features, n_rows_), dtype float32
        ``X.T``: for each term, the rows containing it and their weights.
    """

    def __init__(
        self,
        *,
        method: str = "pruned",
        frequent_df: float = 0.1,
        candidates: int | None = None,
        query_terms: int | None = 50,
        max_postings: int | None = 5000,
        prunable: np.ndarray | None = None,
        block_size: int = 512,
        n_jobs: int = -1,
    ) -> None:
        if method not in ("pruned", "exact"):
            raise ValueError(f"method must be 'pruned' or 'exact', got {method!r}")
        if not 0 < frequent_df <= 1:
            raise ValueError(f"frequent_df must be in (0, 1], got {frequent_df}")
        if candidates is not None and candidates < 1:
            raise ValueError(f"candidates must be at least 1, got {candidates}")
        if query_terms is not None and query_terms < 1:
            raise ValueError(f"query_terms must be at least 1 or None, got {query_terms}")
        if max_postings is not None and max_postings < 1:
            raise ValueError(f"max_postings must be at least 1 or None, got {max_postings}")
        if block_size < 1:
            raise ValueError(f"block_size must be at least 1, got {block_size}")
        self.method = method
        self.frequent_df = frequent_df
        self.candidates = candidates
        self.query_terms = query_terms
        self.max_postings = max_postings
        self.prunable = prunable
        self.block_size = block_size
        self.n_jobs = n_jobs

    def fit(self, X: sp.spmatrix) -> CosineNeighbours:
        """Index the rows of ``X`` (shape (n_rows, n_features), unit L2 norm).

        ``X`` is kept, not copied; :attr:`postings_` is made from it when first
        needed, which the pruned :meth:`all_kneighbors` never does.
        """
        X = as_float32_csr(X)
        self._rows, self._postings, self._rare_postings, self._bounds = X, None, None, None
        self.n_rows_ = X.shape[0]
        return self

    def set_postings(self, postings: sp.csr_matrix) -> CosineNeighbours:
        """Use an already transposed matrix (e.g. memory-mapped from an index)."""
        self._rows, self._postings, self._rare_postings, self._bounds = None, postings, None, None
        self.n_rows_ = postings.shape[1]
        return self

    @property
    def postings_(self) -> sp.csr_matrix:
        """``X.T`` as CSR, shape (n_features, n_rows_), float32; made on first use."""
        if self._postings is None:
            with _MAKING:
                if self._postings is None:
                    self._postings = transposed(self._rows, self.n_jobs)
        return self._postings

    def kneighbors(
        self,
        Q: sp.spmatrix,
        k: int,
        *,
        exclude: np.ndarray | None = None,
        allowed: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` indexed rows for each query row.

        Parameters
        ----------
        Q : sparse matrix of shape (n_queries, n_features)
            Unit-norm query rows in the same feature space.
        k : int
            Results per query.
        exclude : ndarray of shape (n_queries,), dtype int, optional
            One indexed row to leave out per query (the query itself); -1 for none.
        allowed : ndarray of shape (n_rows_,), dtype bool, optional
            Only rows marked True may be returned: filters apply before ranking.

        Returns
        -------
        indices : ndarray of shape (n_queries, k), dtype int32
            Best first, ties to the smaller row; -1 pads when fewer than ``k`` rows
            have a positive score.
        scores : ndarray of shape (n_queries, k), dtype float32
            Cosine similarities; 0 where padded.
        """
        Q, exclude = self._check_queries(Q, k, exclude)
        use_allowed = allowed is not None
        if allowed is None:
            allowed = np.ones(0, dtype=np.bool_)
        elif allowed.shape != (self.n_rows_,):
            raise ValueError(f"allowed must have shape ({self.n_rows_},), got {allowed.shape}")
        return self._run(Q.indptr, Q.indices, Q.data, exclude, allowed, use_allowed, k)

    def kneighbors_reaching(
        self, Q: sp.spmatrix, k: int, cut: np.ndarray, *, exclude: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Top-``k`` indexed rows for each query row, and the indexed rows whose score
        with a query row reaches their ``cut``, from one search (of a fitted index).

        Parameters
        ----------
        Q : sparse matrix of shape (n_queries, n_features)
            Unit-norm query rows in the same feature space.
        k : int
            Results per query.
        cut : ndarray of shape (n_rows_,), dtype float32
            Per indexed row, the score a query must reach to be reported with it
            (``np.inf``: never).
        exclude : ndarray of shape (n_queries,), dtype int
            One indexed row to leave out per query (-1 for none), in both results.

        Returns
        -------
        indices, scores : ndarrays of shape (n_queries, k)
            As :meth:`kneighbors` gives them.
        rows, queries : ndarrays of shape (n_pairs,), dtype int64
            Each indexed row reached, and which query row reached it (position in
            ``Q``); a pair for each positive score at or above the row's cut.
        """
        Q, exclude = self._check_queries(Q, k, exclude)
        bounds = self._term_bounds()
        if bounds is None:
            raise ValueError(
                "kneighbors_reaching needs a search fitted on rows of non-negative weights"
            )
        if Q.nnz and Q.data.min() < 0:
            raise ValueError("kneighbors_reaching needs non-negative query weights")
        cut = np.asarray(cut, dtype=np.float32)
        if cut.shape != (self.n_rows_,):
            raise ValueError(f"cut must have shape ({self.n_rows_},), got {cut.shape}")
        ids = np.empty((Q.shape[0], k), dtype=np.int32)
        scores = np.empty((Q.shape[0], k), dtype=np.float32)
        P, X = self.postings_, self._rows
        rows, queries = bounded_scores_reaching(
            Q.indptr, Q.indices, Q.data, P.indptr, P.indices, P.data,
            X.indptr, X.indices, X.data, *bounds, BOUNDED_STOP, cut, exclude, ids, scores,
        )  # fmt: skip
        return ids, scores, rows, queries

    def all_kneighbors(
        self,
        X: sp.spmatrix,
        k: int,
        *,
        progress: Callable[[int], None] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` neighbours of every indexed row among all the others.

        Parameters
        ----------
        X : sparse matrix of shape (n_rows_, n_features)
            The matrix given to :meth:`fit`.
        k : int
            Neighbours per row; a row never lists itself.
        progress : callable, optional
            Called with the number of rows advanced after each block; the rows
            add up to ``n_rows_``.

        Returns
        -------
        indices, scores : ndarrays of shape (n_rows_, k)
            As in :meth:`kneighbors`.
        """
        X = self._check_rows(X, k)
        all_pairs = all_exact if self.method == "exact" else all_pruned
        return all_pairs(self, X, k, progress or _no_progress)

    def blocks(self, stop: int | None = None) -> list[tuple[int, int]]:
        """``(start, stop)`` row ranges of ``block_size`` covering rows ``0..stop``."""
        stop = self.n_rows_ if stop is None else stop
        return [(s, min(s + self.block_size, stop)) for s in range(0, stop, self.block_size)]

    def rows_kneighbors(
        self, X: sp.csr_matrix, k: int, start: int, stop: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` neighbours of rows ``start..stop`` of ``X`` among all rows.

        The unit of work of :meth:`all_kneighbors` for the exact method. For
        ``"pruned"`` it is the one-sided search (each row's own candidates only, no
        pair offered to both rows), which benchmarks and tests compare with.

        Returns
        -------
        indices, scores : ndarrays of shape (stop - start, k)
        """
        X, indptr, own = self._row_block(X, k, start, stop)
        if self.method == "exact":
            return self._run(indptr, X.indices, X.data, own, np.ones(0, np.bool_), False, k)
        candidates, exact = self._candidate_pairs(X, indptr, own, k)
        ids = np.empty((len(own), k), dtype=np.int32)
        values = np.empty((len(own), k), dtype=np.float32)
        rescore_top_k(
            indptr, X.indices, X.data, X.indptr, X.indices, X.data,
            X.shape[1], candidates, ids, values,
        )  # fmt: skip
        ids[exact], values[exact] = self.kneighbors(X[own[exact]], k, exclude=own[exact])
        return ids, values

    def block_candidates(
        self, X: sp.csr_matrix, k: int, start: int, stop: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Candidates of rows ``start..stop`` (``"pruned"``), sorted by row id.

        The first unit of work of :meth:`all_kneighbors` for the pruned method.

        Returns
        -------
        candidates : ndarray of shape (stop - start, n_candidates), dtype int32
            Each row's candidates in ascending order, -1 padding first; all -1 for a
            row with too few to fill the list.
        exact : ndarray of shape (n_exact,), dtype int64
            Those rows (ids), to be searched exactly.
        """
        X, indptr, own = self._row_block(X, k, start, stop)
        candidates, exact = self._candidate_pairs(X, indptr, own, k)
        candidates[exact] = NO_NEIGHBOUR
        sort_candidates(candidates)
        return candidates, own[exact]

    def get_params(self) -> dict:
        """Constructor parameters, as in scikit-learn."""
        return {
            "method": self.method,
            "frequent_df": self.frequent_df,
            "candidates": self.candidates,
            "query_terms": self.query_terms,
            "max_postings": self.max_postings,
            "prunable": self.prunable,
            "block_size": self.block_size,
            "n_jobs": self.n_jobs,
        }

    def _row_block(self, X, k, start, stop):
        """``X`` checked, and rows ``start..stop`` as a row-pointer slice and their ids."""
        X = self._check_rows(X, k)
        if not 0 <= start <= stop <= self.n_rows_:
            raise ValueError(f"bad row range {start}..{stop} of {self.n_rows_}")
        # A slice of indptr still points into the full indices/data arrays: no copy.
        return X, X.indptr[start : stop + 1], np.arange(start, stop, dtype=np.int64)

    def _candidate_pairs(self, X, indptr, own, k):
        """Each row's candidates (n_rows, n_candidates) and the rows to search exactly."""
        rare = self.rare_postings_
        candidates = np.empty((len(own), self._n_candidates(k)), dtype=np.int32)
        found = rows_candidates(
            indptr, X.indices, X.data, rare.indptr, rare.indices, rare.data,
            self.n_rows_, own, self.query_terms or 0, candidates,
        )  # fmt: skip
        # Too few matches to fill the candidate list: rows sharing only frequent
        # words with this one could still belong in it, so search it exactly.
        return candidates, np.flatnonzero(found < candidates.shape[1])

    def _n_candidates(self, k: int) -> int:
        return max(self.candidates or max(5 * k, 100), k)

    @property
    def rare_postings_(self) -> sp.csr_matrix:
        """The postings that propose candidates: without the frequent prunable terms
        (their rows emptied), each term cut to its ``max_postings`` heaviest.

        Computed on first use (threads racing here compute the same matrix).
        """
        if getattr(self, "_rare_postings", None) is None:
            self._rare_postings = self._champion_postings()
        return self._rare_postings

    def _champion_postings(self) -> sp.csr_matrix:
        rows = getattr(self, "_rows", None)
        if rows is None:  # only the postings are at hand (a loaded index)
            n_features, df = self.postings_.shape[0], np.diff(self.postings_.indptr)
        else:
            n_features = rows.shape[1]
            # Counted in place: np.bincount would first copy every row's column
            # indices to int64 (840 MB at 600,000 trials).
            df = np.zeros(n_features, dtype=np.int64)
            count_columns(rows.indptr, rows.indices, 0, rows.shape[0], df)
        frequent = df > self.frequent_df * self.n_rows_
        if self.prunable is not None:
            if self.prunable.shape != (n_features,):
                raise ValueError(f"prunable must have shape ({n_features},)")
            frequent &= self.prunable
        if rows is None:
            P = self.postings_
            kept = (sp.diags((~frequent).astype(np.float32)) @ P).tocsr()
            kept.eliminate_zeros()
            kept.sort_indices()
            if self.max_postings is None:
                return kept
            arrays = truncate_postings(kept.indptr, kept.indices, kept.data, self.max_postings)
            return sp.csr_matrix(arrays[::-1], shape=kept.shape)
        # From the rows directly: the whole transpose is never held.
        indptr, indices, data = champion_postings(
            rows.indptr, rows.indices, rows.data, n_features, ~frequent, self.max_postings or 0
        )
        nnz = indptr[-1]
        return sp.csr_matrix(
            (data[:nnz].copy(), indices[:nnz].copy(), indptr), shape=(n_features, self.n_rows_)
        )

    def _term_bounds(self) -> tuple[np.ndarray, np.ndarray] | None:
        """``(slots, bounds)`` for the bounded kernels, made on first use; None when
        the rows are not at hand (a loaded index: its searches read every posting) or
        some weight is negative (a bound is a largest weight: it needs none).
        """
        if getattr(self, "_rows", None) is None:
            return None
        if getattr(self, "_bounds", None) is None:
            with _MAKING:
                if self._bounds is None:
                    self._bounds = self._make_term_bounds()
        return self._bounds or None

    def _make_term_bounds(self) -> tuple[np.ndarray, np.ndarray] | tuple[()]:
        if self._rows.nnz and self._rows.data.min() < 0:
            return ()
        P = self.postings_
        terms = np.flatnonzero(np.diff(P.indptr) > BOUNDED_DF * self.n_rows_)
        slots = np.full(P.shape[0], NO_NEIGHBOUR, dtype=np.int32)
        slots[terms] = np.arange(len(terms), dtype=np.int32)
        bounds = np.zeros((len(terms), -(-self.n_rows_ // SCORE_BLOCK)), dtype=np.float32)
        step = max(1, -(-len(terms) // 64))
        arrays = (P.indptr, P.indices, P.data, terms, bounds)
        ends = [(a, min(a + step, len(terms))) for a in range(0, len(terms), step)]
        work = (delayed(fill_term_bounds)(*arrays, a, b) for a, b in ends)
        Parallel(n_jobs=self.n_jobs, backend="threading")(work)
        return slots, bounds

    def _set_rare_postings(self, rare: sp.csr_matrix | None) -> CosineNeighbours:
        self._rare_postings = rare
        return self

    def _check_queries(
        self, Q: sp.spmatrix, k: int, exclude: np.ndarray | None
    ) -> tuple[sp.csr_matrix, np.ndarray]:
        self._check_k(k)
        Q = as_float32_csr(Q)
        if Q.shape[1] != self.postings_.shape[0]:
            raise ValueError(
                f"queries have {Q.shape[1]} features, the index has {self.postings_.shape[0]}"
            )
        if exclude is None:
            exclude = np.full(Q.shape[0], NO_NEIGHBOUR, dtype=np.int64)
        exclude = np.asarray(exclude, dtype=np.int64)
        if exclude.shape != (Q.shape[0],):
            raise ValueError(f"exclude must have shape ({Q.shape[0]},), got {exclude.shape}")
        return Q, exclude

    def _check_rows(self, X: sp.spmatrix, k: int) -> sp.csr_matrix:
        self._check_k(k)
        X = as_float32_csr(X)
        if X.shape[0] != self.n_rows_:
            raise ValueError(f"X has {X.shape[0]} rows, the index has {self.n_rows_}")
        return X

    def _run(self, indptr, indices, data, exclude, allowed, use_allowed, k):
        n_queries = len(indptr) - 1
        out_ids = np.empty((n_queries, k), dtype=np.int32)
        out_scores = np.empty((n_queries, k), dtype=np.float32)
        P = self.postings_
        bounds = None if use_allowed else self._term_bounds()
        weights = data[indptr[0] : indptr[-1]]  # the queries' (a block of rows' own)
        if bounds is not None and (len(weights) == 0 or weights.min() >= 0):
            X = self._rows
            bounded_top_k(
                indptr, indices, data, P.indptr, P.indices, P.data,
                X.indptr, X.indices, X.data, *bounds, BOUNDED_STOP, exclude, out_ids, out_scores,
            )  # fmt: skip
            return out_ids, out_scores
        rows_top_k(
            indptr, indices, data, P.indptr, P.indices, P.data,
            self.n_rows_, exclude, allowed, use_allowed, out_ids, out_scores,
        )  # fmt: skip
        return out_ids, out_scores

    @staticmethod
    def _check_k(k: int) -> None:
        if not isinstance(k, int | np.integer) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
