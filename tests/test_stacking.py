"""Field groups' blocks stacked in one copy equal scipy's hstack of the weighted blocks."""

import numpy as np
import pytest
import scipy.sparse as sp

from recommender.text.stacking import stack_weighted


def blocks_of(seed: int, widths: list[int], n_rows: int = 50) -> list[sp.csr_matrix]:
    rng = np.random.default_rng(seed)
    blocks = []
    for width in widths:
        dense = rng.random((n_rows, width), dtype=np.float32) + np.float32(0.1)
        dense[rng.random((n_rows, width)) < 0.7] = 0
        dense[rng.integers(0, n_rows, 10)] = 0  # a few empty rows
        blocks.append(sp.csr_matrix(dense))
    return blocks


def scipy_stack(blocks, weights):
    weighted = []
    for block, weight in zip(blocks, weights, strict=True):
        block = block.astype(np.float32)  # a copy
        block.data *= np.float32(weight)
        weighted.append(block)
    return sp.hstack(weighted, format="csr", dtype=np.float32)


@pytest.mark.parametrize("seed", range(4))
def test_equals_scipy_hstack_of_the_weighted_blocks_bit_for_bit(seed):
    widths = [7, 0, 13, 1, 30]  # a group left with no terms is a block of width 0
    weights = [0.4, 1.0, 0.5, 0.3, 1.0]
    blocks = blocks_of(seed, widths)
    want = scipy_stack(blocks, weights)
    given = list(blocks)
    got = stack_weighted(given, weights)
    assert given == []  # emptied as it was read
    assert got.shape == want.shape == (50, sum(widths))
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got.indptr, want.indptr)
    np.testing.assert_array_equal(got.indices, want.indices)
    assert got.data.tobytes() == want.data.tobytes()
    assert got.has_sorted_indices
    assert got.indices.dtype == got.indptr.dtype == np.int32


def test_reads_int64_indices_and_integer_data():
    blocks = blocks_of(9, [5, 6])
    blocks[0].indptr = blocks[0].indptr.astype(np.int64)
    blocks[1] = sp.csr_matrix(
        (np.arange(1, blocks[1].nnz + 1, dtype=np.int32), blocks[1].indices.astype(np.int64),
         blocks[1].indptr), shape=blocks[1].shape,
    )  # fmt: skip
    want = scipy_stack(blocks, [2.0, 0.5])
    got = stack_weighted(list(blocks), [2.0, 0.5])
    np.testing.assert_array_equal(got.toarray(), want.toarray())


def test_a_single_row_as_a_query_is_vectorised():
    blocks = blocks_of(3, [4, 4], n_rows=1)
    got = stack_weighted(list(blocks), [1.0, 2.0])
    np.testing.assert_array_equal(got.toarray(), scipy_stack(blocks, [1.0, 2.0]).toarray())


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="2 blocks but 1 weights"):
        stack_weighted(blocks_of(0, [3, 3]), [1.0])
    with pytest.raises(ValueError, match="no blocks"):
        stack_weighted([], [])
    with pytest.raises(ValueError, match="differ in rows"):
        stack_weighted(blocks_of(0, [3], n_rows=5) + blocks_of(0, [3], n_rows=6), [1.0, 1.0])
