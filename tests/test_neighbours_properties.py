"""Property-based checks of the neighbour search and its kernels against plain references
(dense brute force, a sort of every partial score, a stable sort of a term's postings)."""

import numpy as np
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.preprocessing import normalize

from recommender._kernels import _heaviest_positions, rows_candidates
from recommender.neighbours import CosineNeighbours
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
