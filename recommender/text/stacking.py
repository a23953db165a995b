"""Field groups' blocks laid side by side, each times its weight, in one copy.

``scipy.sparse.hstack`` of CSR blocks first concatenates every block's data and
indices and then stacks from those copies: three copies of the vectors at once (the
blocks, the concatenation, the result). At 600,000 trials that was the build's
peak memory. Here each block is copied straight into the result and dropped as
soon as it is copied, so at most the blocks and the result exist together.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from numba import njit

_INT32_MAX = np.iinfo(np.int32).max


def stack_weighted(blocks: list[sp.csr_matrix], weights: Sequence[float]) -> sp.csr_matrix:
    """``scipy.sparse.hstack([w * b for b, w in zip(blocks, weights)], format="csr")``.

    ``blocks`` is emptied as it is read, so each block's arrays are freed once
    copied (unless the caller holds them elsewhere).

    Parameters
    ----------
    blocks : list of csr_matrix, each of shape (n_rows, n_columns_i)
        Same number of rows; any numeric dtype (weighted in float32).
    weights : sequence of float, length len(blocks)

    Returns
    -------
    csr_matrix of shape (n_rows, sum of n_columns_i), dtype float32
        The same matrix as scipy's ``hstack`` of the weighted blocks (the same
        entries, bit for bit, in the same order); indices and indptr are int32
        while the entries and columns fit, else int64 (scipy also keeps int64 when
        a block has it); a row's indices are sorted when each block's are.
    """
    if len(blocks) != len(weights):
        raise ValueError(f"{len(blocks)} blocks but {len(weights)} weights")
    if not blocks:
        raise ValueError("no blocks to stack")
    n_rows = blocks[0].shape[0]
    if any(block.shape[0] != n_rows for block in blocks):
        raise ValueError(f"blocks differ in rows: {[block.shape[0] for block in blocks]}")
    widths = [block.shape[1] for block in blocks]
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    for block in blocks:
        indptr += block.indptr
    nnz = int(indptr[-1])
    index_dtype = np.int32 if max(sum(widths) - 1, nnz) <= _INT32_MAX else np.int64
    indices = np.empty(nnz, dtype=index_dtype)
    data = np.empty(nnz, dtype=np.float32)
    cursor = indptr[:-1].copy()
    offset = 0
    for width, weight in zip(widths, weights, strict=True):
        block = blocks.pop(0)
        _copy_block(
            block.indptr, block.indices, block.data, offset, np.float32(weight),
            cursor, indices, data,
        )  # fmt: skip
        del block
        offset += width
    shape = (n_rows, sum(widths))
    return sp.csr_matrix((data, indices, indptr.astype(index_dtype)), shape=shape)


@njit(nogil=True, cache=True)
def _copy_block(indptr, indices, data, offset, weight, cursor, out_indices, out_data):
    # Row by row into the place left for this block after the blocks before it;
    # the weight is applied as scipy's ``data *= weight`` would (one float32 product).
    for row in range(indptr.shape[0] - 1):
        at = cursor[row]
        for j in range(indptr[row], indptr[row + 1]):
            out_indices[at] = indices[j] + offset
            out_data[at] = np.float32(data[j]) * weight
            at += 1
        cursor[row] = at
