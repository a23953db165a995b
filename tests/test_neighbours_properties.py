"""Property-based checks of the exact search against dense brute force."""

import numpy as np
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.preprocessing import normalize

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
