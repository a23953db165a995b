"""Property-based checks of the neighbour search and its kernels against plain references
(dense brute force, a sort of every partial score or of every score added term by term
as the kernels add them, a stable sort of a term's postings)."""

import numpy as np
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.preprocessing import normalize

from recommender.neighbours import NO_NEIGHBOUR, CosineNeighbours
from recommender.neighbours._heap_kernels import rows_top_k
from recommender.neighbours._postings_kernels import _heaviest_positions
from recommender.neighbours._scoring_kernels import bounded_scores_reaching, rows_candidates
from tests.test_neighbours import brute_force


@st.composite
def sparse_rows(draw):
    n_rows = draw(st.integers(1, 40))
    n_features = draw(st.integers(1, 15))
    density = draw(st.floats(0.0, 1.0))
    seed = draw(st.integers(0, 2**32 - 1))
    X = sp.random(n_rows, n_features, density=density, random_state=seed, dtype=np.float32)
    return normalize(X.tocsr())


@settings(max_examples=60, deadline=None, derandomize=True)
@given(X=sparse_rows(), k=st.integers(1, 8), method=st.sampled_from(["exact", "pruned"]))
def test_scores_equal_brute_force(X, k, method):
    n = X.shape[0]
    # candidates=n makes pruning lossless, so both methods must match brute force.
    search = CosineNeighbours(method=method, candidates=max(n, 1), block_size=7, n_jobs=1)
    ids, scores = search.fit(X).all_kneighbors(X, k)
    _, ref_scores = brute_force(X, X, k, exclude=np.arange(n))
    np.testing.assert_allclose(scores, ref_scores, atol=1e-6)
    assert not np.any(ids == np.arange(n)[:, None])
    assert np.all((ids >= 0) == (scores > 0))


def partial_scores_reference(X, P, i):
    """Row i's partial scores over every term, added term by term as the kernel adds."""
    acc = np.zeros(P.shape[1], dtype=np.float32)
    for p in range(X.indptr[i], X.indptr[i + 1]):
        postings = slice(P.indptr[X.indices[p]], P.indptr[X.indices[p] + 1])
        acc[P.indices[postings]] += X.data[p] * P.data[postings]
    return acc


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    n_rows=st.integers(1, 2500),
    n_features=st.integers(1, 30),
    levels=st.integers(1, 4),
    n_candidates=st.integers(1, 12),
    seed=st.integers(0, 2**32 - 1),
)
def test_candidates_are_the_best_partial_scores_ties_to_the_smaller_row(
    n_rows, n_features, levels, n_candidates, seed
):
    # Few distinct weights make many ties; thousands of rows make the search skip
    # whole blocks of scores below its floor.
    rng = np.random.default_rng(seed)
    weights = rng.integers(1, levels + 1, size=(n_rows, n_features))
    present = rng.random((n_rows, n_features)) < 0.3
    X = sp.csr_matrix((weights * present).astype(np.float32) / levels)
    P = X.T.tocsr()
    start = int(rng.integers(n_rows))
    stop = min(start + 4, n_rows)
    own = np.arange(start, stop, dtype=np.int64)
    candidates = np.empty((len(own), n_candidates), dtype=np.int32)
    found = rows_candidates(
        X.indptr[start : stop + 1], X.indices, X.data, P.indptr, P.indices, P.data,
        n_rows, own, 0, candidates,
    )  # fmt: skip
    for q, i in enumerate(own):
        scores = partial_scores_reference(X, P, i)
        scores[i] = 0.0
        order = np.argsort(-scores, kind="stable")[:n_candidates]
        expected = order[scores[order] > 0]
        assert found[q] == len(expected)
        assert candidates[q, : len(expected)].tolist() == expected.tolist()
        assert (candidates[q, len(expected) :] == -1).all()


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    weights=st.lists(st.sampled_from([0.25, 0.5, 0.75, 1.0, 0.3333]), max_size=60),
    count=st.integers(1, 70),
)
def test_a_terms_heaviest_postings_are_those_a_stable_sort_keeps(weights, count):
    weights = np.asarray(weights, dtype=np.float32)
    expected = np.sort(np.argsort(-weights, kind="stable")[:count])
    assert _heaviest_positions(weights, count).tolist() == expected.tolist()


def tied_rows(n_rows, n_features, levels, seed):
    """Unit rows from a few weight levels (so many scores tie), each column with its
    own density (so some terms are frequent enough to get bounds, some not)."""
    rng = np.random.default_rng(seed)
    weights = rng.integers(1, levels + 1, size=(n_rows, n_features)).astype(np.float32)
    present = rng.random((n_rows, n_features)) < rng.uniform(0.0, 0.6, size=n_features)
    return normalize(sp.csr_matrix(weights * present))


def top_k_reference(X, P, i, k, exclude):
    """Row i's best k by scores added as rows_top_k adds them, ties to the smaller row."""
    scores = partial_scores_reference(X, P, i)
    if exclude >= 0:
        scores[exclude] = 0.0
    order = np.argsort(-scores, kind="stable")[:k]
    order = np.pad(order, (0, k - len(order)), constant_values=NO_NEIGHBOUR)
    found = (order >= 0) & (scores[np.maximum(order, 0)] > 0)
    return np.where(found, order, NO_NEIGHBOUR), np.where(found, scores[order], 0.0)


exact_cases = given(
    n_rows=st.integers(1, 2500),
    n_features=st.integers(1, 30),
    levels=st.integers(1, 3),
    k=st.integers(1, 12),
    stop_share=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**32 - 1),
)


def bounded_search(X, k, stop_share, cut):
    """bounded_scores_reaching over every row of X, each row excluded from its own."""
    search = CosineNeighbours(method="exact", n_jobs=1).fit(X)
    P, (slots, bounds) = search.postings_, search._term_bounds()
    own = np.arange(X.shape[0], dtype=np.int64)
    ids = np.empty((X.shape[0], k), dtype=np.int32)
    scores = np.empty((X.shape[0], k), dtype=np.float32)
    rows, queries = bounded_scores_reaching(
        X.indptr, X.indices, X.data, P.indptr, P.indices, P.data, X.indptr, X.indices,
        X.data, slots, bounds, np.float32(stop_share), cut, own, ids, scores,
    )  # fmt: skip
    return P, ids, scores, rows, queries


@settings(max_examples=40, deadline=None, derandomize=True)
@exact_cases
def test_exact_search_is_the_best_k_ties_to_the_smaller_row_with_or_without_bounds(
    n_rows, n_features, levels, k, stop_share, seed
):
    X = tied_rows(n_rows, n_features, levels, seed)
    P, ids, scores, _, _ = bounded_search(X, k, stop_share, np.zeros(0, dtype=np.float32))
    plain_ids = np.empty_like(ids)
    plain_scores = np.empty_like(scores)
    own = np.arange(n_rows, dtype=np.int64)
    rows_top_k(
        X.indptr, X.indices, X.data, P.indptr, P.indices, P.data, n_rows, own,
        np.ones(0, np.bool_), False, plain_ids, plain_scores,
    )  # fmt: skip
    for i in range(0, n_rows, max(1, n_rows // 25)):
        expected_ids, expected_scores = top_k_reference(X, P, i, k, i)
        assert plain_ids[i].tolist() == expected_ids.tolist()
        assert ids[i].tolist() == expected_ids.tolist()
        # Bit for bit: the bounded search adds the same products in the same order.
        assert scores[i].tobytes() == expected_scores.astype(np.float32).tobytes()
        assert plain_scores[i].tobytes() == scores[i].tobytes()


@settings(max_examples=40, deadline=None, derandomize=True)
@exact_cases
def test_rows_reaching_their_cut_are_every_positive_score_at_or_above_it(
    n_rows, n_features, levels, k, stop_share, seed
):
    X = tied_rows(n_rows, n_features, levels, seed)
    rng = np.random.default_rng(seed)
    cut = rng.choice(np.array([-1.0, 0.2, 0.5, 0.9, np.inf], dtype=np.float32), size=n_rows)
    P, _, _, rows, queries = bounded_search(X, k, stop_share, cut)
    found = sorted(zip(queries.tolist(), rows.tolist(), strict=True))
    expected = []
    for i in range(n_rows):
        scores = partial_scores_reference(X, P, i)
        reached = np.flatnonzero((scores != 0) & (scores >= cut))
        expected += [(i, int(j)) for j in reached if j != i]
    assert found == expected
