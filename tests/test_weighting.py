"""The compiled BM25 weights, norms and pivot scaling equal the numpy formulas."""

import numpy as np
import pytest
import scipy.sparse as sp

from recommender.text import (
    average_length,
    bm25_weights,
    extend_pivoted,
    pivot_normalise,
    row_norms,
)
from recommender.text.weighting import column_counts


def counts_matrix(seed: int) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    X = sp.random(60, 40, density=0.2, random_state=seed, format="csr", dtype=np.float32)
    X.data = rng.integers(1, 9, X.nnz).astype(np.float32)
    X = X.astype(np.int32)
    X.indptr[30:] = X.indptr[30]  # empty rows too
    X.indices, X.data = X.indices[: X.indptr[-1]], X.data[: X.indptr[-1]]
    return X


def numpy_bm25(counts, idf, avg_length, k1, b):
    # The formula as numpy evaluated it before it was compiled.
    counts = sp.csr_matrix(counts, dtype=np.float32)
    lengths = np.asarray(counts.sum(axis=1)).ravel()
    per_entry = np.repeat(lengths / avg_length, np.diff(counts.indptr))
    tf = counts.data
    return idf[counts.indices] * tf * (k1 + 1) / (tf + k1 * (1 - b + b * per_entry))


@pytest.mark.parametrize("seed", range(3))
def test_bm25_weights_equal_the_numpy_formula_bit_for_bit(seed):
    counts = counts_matrix(seed)
    idf = (np.random.default_rng(seed).random(40) + 1).astype(np.float32)
    weights = bm25_weights(counts, idf, 7.3, 1.2, 0.75)
    want = numpy_bm25(counts, idf, 7.3, 1.2, 0.75).astype(np.float32)
    assert weights.data.dtype == np.float32
    assert weights.data.tobytes() == want.tobytes()
    np.testing.assert_array_equal(weights.indices, counts.indices)


@pytest.mark.parametrize("seed", [4, 5, 6])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_norms_equal_scipy_bit_for_bit(seed, dtype):
    X = bm25_weights(counts_matrix(seed), np.ones(40, np.float32), 5.0, 1.2, 0.75)
    X = X.astype(dtype)
    X.data[::3] *= -1  # a norm does not care for signs
    want = np.sqrt(np.asarray(X.multiply(X).sum(axis=1), dtype=np.float64).ravel())
    assert row_norms(X).tobytes() == want.tobytes()
    assert row_norms(X[:0]).shape == (0,)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_norms_of_long_rows_sum_in_numpys_pairwise_order(dtype):
    # Rows past 8 and 128 values (and 129: the first split) take numpy's other paths.
    rng = np.random.default_rng(7)
    lengths = [0, 1, 7, 8, 9, 16, 17, 128, 129, 130, 137, 257, 1000, 4099]
    rows = [rng.random(n).astype(dtype) * 3 for n in lengths]
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    X = sp.csr_matrix(
        (np.concatenate(rows), np.concatenate([np.arange(n) for n in lengths]), indptr),
        shape=(len(lengths), max(lengths)),
    )
    want = np.sqrt(np.asarray(X.multiply(X).sum(axis=1), dtype=np.float64).ravel())
    assert row_norms(X).tobytes() == want.tobytes()


def test_pivot_normalise_scales_rows_in_place():
    X = bm25_weights(counts_matrix(5), np.ones(40, np.float32), 5.0, 1.2, 0.75)
    norms = row_norms(X)
    before = X.copy()
    out = pivot_normalise(X, pivot=2.0, power=0.5)
    assert out is X
    scale = np.ones_like(norms)
    scale[norms > 0] = 1 / (norms[norms > 0] ** 0.5 * 2.0**0.5)
    scale = scale.astype(np.float32)
    want = before.data * np.repeat(scale, np.diff(before.indptr))
    assert X.data.tobytes() == want.astype(np.float32).tobytes()


@pytest.mark.parametrize("power", [0.0, 0.2, 0.6])
def test_a_pivoted_row_is_extended_as_if_normalised_with_the_added_terms(power):
    rng = np.random.default_rng(4)
    lists = np.arange(50) >= 40  # the rows have nothing where terms are added
    whole = sp.random(30, 50, density=0.2, random_state=rng, dtype=np.float32).toarray()
    added = sp.random(30, 50, density=0.1, random_state=rng, dtype=np.float32).toarray()
    added[3] = 0  # a row that gains nothing keeps its scale
    whole = sp.csr_matrix(whole * ~lists, dtype=np.float32)
    added = sp.csr_matrix(added * lists, dtype=np.float32)
    pivot = 1.3
    rows = pivot_normalise(whole.copy(), pivot, power)
    expected = pivot_normalise((whole + added).tocsr(), pivot, power)
    got = extend_pivoted(rows, added, pivot, power)
    np.testing.assert_allclose(got.toarray(), expected.toarray(), rtol=2e-6, atol=1e-7)
    with pytest.raises(ValueError, match="do not keep their length"):
        extend_pivoted(rows, added, pivot, 1.0)


@pytest.mark.parametrize("seed", range(3))
def test_column_counts_and_average_length_equal_numpy_and_scipy(seed):
    counts = counts_matrix(seed)
    df = column_counts(counts)
    want = np.bincount(counts.indices, minlength=counts.shape[1])
    assert df.dtype == np.int64
    np.testing.assert_array_equal(df, want)
    lengths = np.asarray(counts.sum(axis=1)).ravel()
    assert average_length(counts) == float(lengths[lengths > 0].mean())
    as_float = counts.astype(np.float32)
    as_float.data *= np.float32(0.5)
    assert average_length(as_float) == pytest.approx(float(lengths[lengths > 0].mean()) / 2)
    assert average_length(sp.csr_matrix((4, 3), dtype=np.int32)) == 1.0
