import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.preprocessing import normalize

from recommender.neighbours import NO_NEIGHBOUR, CosineNeighbours


def random_rows(n_rows, n_features, density, seed):
    X = sp.random(n_rows, n_features, density=density, random_state=seed, dtype=np.float32)
    return normalize(X.tocsr())


def brute_force(X, Q, k, exclude=None, allowed=None):
    """The reference: dense cosines, self and filtered rows removed, stable sort."""
    scores = (Q @ X.T).toarray()
    if exclude is not None:
        scores[np.arange(len(exclude)), exclude] = -np.inf
    if allowed is not None:
        scores[:, ~allowed] = -np.inf
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    top = np.take_along_axis(scores, order, axis=1)
    order = np.where(top > 0, order, NO_NEIGHBOUR)
    return order, np.where(top > 0, top, 0.0)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("block_size", [1, 7, 512])
def test_all_pairs_equal_brute_force(seed, block_size):
    X = random_rows(120, 40, 0.08, seed)
    ids, scores = CosineNeighbours(block_size=block_size, n_jobs=2).fit(X).all_kneighbors(X, 8)
    ref_ids, ref_scores = brute_force(X, X, 8, exclude=np.arange(120))
    np.testing.assert_allclose(scores, ref_scores, atol=1e-6)
    # Ids must match wherever scores are not tied with a neighbour's.
    assert (ids == ref_ids).mean() > 0.99
    assert not np.any(ids == np.arange(120)[:, None]), "a row listed itself"


def test_ties_go_to_the_smaller_row_and_padding_is_minus_one():
    X = normalize(sp.csr_matrix(np.array([[1, 0], [1, 0], [1, 0], [0, 1]], dtype=np.float32)))
    ids, scores = CosineNeighbours().fit(X).all_kneighbors(X, 3)
    assert ids[0].tolist() == [1, 2, NO_NEIGHBOUR]
    assert ids[2].tolist() == [0, 1, NO_NEIGHBOUR]
    assert ids[3].tolist() == [NO_NEIGHBOUR] * 3
    np.testing.assert_allclose(scores[0], [1.0, 1.0, 0.0], rtol=1e-6)


def test_query_with_filter_and_exclusion():
    X = random_rows(200, 30, 0.1, 11)
    allowed = np.zeros(200, dtype=bool)
    allowed[::3] = True
    search = CosineNeighbours().fit(X)
    ids, scores = search.kneighbors(X[:5], 6, exclude=np.arange(5), allowed=allowed)
    ref_ids, ref_scores = brute_force(X, X[:5], 6, exclude=np.arange(5), allowed=allowed)
    np.testing.assert_allclose(scores, ref_scores, atol=1e-6)
    assert (ids == ref_ids).mean() > 0.99
    assert np.all(allowed[ids[ids >= 0]])


def test_k_larger_than_corpus_pads():
    X = random_rows(4, 10, 0.9, 3)
    ids, _ = CosineNeighbours().fit(X).all_kneighbors(X, 10)
    assert ids.shape == (4, 10)
    assert np.all(ids[:, 3:] == NO_NEIGHBOUR)


@pytest.mark.parametrize("k", [0, -1, 2.5])
def test_bad_k_is_refused(k):
    X = random_rows(4, 10, 0.9, 3)
    with pytest.raises(ValueError, match="k must be"):
        CosineNeighbours().fit(X).kneighbors(X, k)


def test_feature_mismatch_is_refused():
    search = CosineNeighbours().fit(random_rows(4, 10, 0.9, 3))
    with pytest.raises(ValueError, match="features"):
        search.kneighbors(random_rows(1, 11, 0.9, 3), 2)
