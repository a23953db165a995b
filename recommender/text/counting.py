"""Term counts for the vectoriser: chunks counted in parallel, merged, pruned, named.

scikit-learn's ``CountVectorizer`` counts in one process with a Python step per
token. Here each chunk of documents is counted by the compiled pass of
:mod:`recommender.text.tokenizer` (on threads: it holds no GIL) with columns named by term
hash; the chunks are merged into one set of columns, pruned by document frequency
exactly as ``CountVectorizer(min_df=..., max_df=...)`` prunes, and only the
surviving terms are spelled out (from their first occurrence) and sorted as
scikit-learn sorts its vocabulary. The result is the same count matrix, so
scikit-learn's ``TfidfTransformer`` then gives the same TF-IDF.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from numba import njit

from recommender.infra import release_free_memory
from recommender.text._tokenizer_compiled import EncodedTexts, HashedCounts, count_new_terms
from recommender.text.tokenizer import ItemAnalyzer
from recommender.text.weighting import column_counts

# Freed parts' bytes after which a merge gives the C heap's free memory back.
_TRIM_BYTES = 64 << 20


def count_chunk(texts: EncodedTexts, analyzer: ItemAnalyzer) -> tuple[HashedCounts, EncodedTexts]:
    """Count a chunk's terms and keep only the bytes that spell them.

    Returns
    -------
    counted : HashedCounts
        As :func:`~recommender.text._tokenizer_compiled.count_new_terms`, with
        ``spans`` into ``spellings``.
    spellings : EncodedTexts
        One occurrence of each counted term, back to back (no documents): what
        :func:`spell_terms` reads once the chunks are merged and pruned. Keeping it
        instead of the chunk's whole text is most of the vectoriser's memory on a
        large registry (289 of 334 MB of encoded text on the full corpus).
    """
    counted = count_new_terms(texts, analyzer)
    starts, stops = counted.spans[:, 0], counted.spans[:, 1]
    lengths = stops - starts
    new_stops = np.cumsum(lengths)
    new_starts = new_stops - lengths
    total = int(new_stops[-1]) if len(new_stops) else 0
    gather = np.repeat(starts - new_starts, lengths) + np.arange(total, dtype=np.int64)
    no_items = np.zeros(0, dtype=np.int64)
    spellings = EncodedTexts(texts.buffer[gather], no_items, no_items)
    spans = np.stack([new_starts, new_stops], axis=1).astype(np.int64)
    return HashedCounts(counted.keys, spans, counted.counts, counted.sources), spellings


def merge_counts(parts: list[HashedCounts]) -> HashedCounts:
    """Stack the counts of consecutive parts over the union of their terms.

    ``parts`` is emptied as it is read: each part's counts are dropped once copied,
    so a large group never holds its parts and their merge at once.

    Returns
    -------
    HashedCounts
        Columns in ascending hash order; ``sources`` says which part's buffer
        each column's span is in.
    """
    key_starts = np.cumsum([0] + [len(p.keys) for p in parts])
    keys, first, column_of = np.unique(
        np.concatenate([p.keys for p in parts]), return_index=True, return_inverse=True
    )
    column_of = column_of.astype(np.int32)
    sources = np.searchsorted(key_starts, first, side="right") - 1
    spans = np.concatenate([p.spans for p in parts])[first]
    n_rows = sum(p.counts.shape[0] for p in parts)
    nnz = sum(p.counts.nnz for p in parts)
    dtype = parts[0].counts.data.dtype if parts else np.int32
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    indices = np.empty(nnz, dtype=np.int32)
    data = np.empty(nnz, dtype=dtype)
    row = entry = dropped = 0
    for key_start in key_starts[:-1]:
        counts = parts.pop(0).counts
        rows, size = counts.shape[0], counts.nnz
        indptr[row + 1 : row + rows + 1] = counts.indptr[1:] + entry
        indices[entry : entry + size] = column_of[key_start + counts.indices]
        data[entry : entry + size] = counts.data
        row, entry = row + rows, entry + size
        dropped += counts.indices.nbytes + counts.data.nbytes
        del counts
        if dropped >= _TRIM_BYTES:
            # A part's arrays are small enough to come from the C heap, which keeps
            # them when freed; the merge's arrays are not, so without this the
            # group's counts were resident twice (at 600k, about 500 MB more, measured).
            release_free_memory()
            dropped = 0
    shape = (n_rows, len(keys))
    return HashedCounts(keys, spans, sp.csr_matrix((data, indices, indptr), shape=shape), sources)


def frequent_columns(counts: sp.csr_matrix, min_df: float, max_df: float) -> np.ndarray:
    """The columns whose document frequency is within bounds, ascending.

    ``min_df`` and ``max_df`` are document counts when integers and shares of the
    documents when floats, as in scikit-learn's ``CountVectorizer``.
    """
    n_docs = counts.shape[0]
    low = min_df if isinstance(min_df, int | np.integer) else min_df * n_docs
    high = max_df if isinstance(max_df, int | np.integer) else max_df * n_docs
    df = column_counts(counts)
    return np.flatnonzero((df >= low) & (df <= high))


def spell_terms(
    counted: HashedCounts, columns: np.ndarray, texts: Sequence[EncodedTexts]
) -> tuple[list[str], sp.csr_matrix]:
    """The terms of ``columns``, sorted, with their counts in that order.

    ``texts`` are the texts of the parts merged into ``counted``, in order, or their
    ``spellings`` from :func:`count_chunk`. ``counted.counts`` is used up: the
    result is made in its arrays.

    Returns
    -------
    terms : list of str, sorted
    counts : csr_matrix of shape (n_docs, len(terms)), dtype int32, indices sorted
    """
    sources = np.zeros(len(columns), np.int64) if counted.sources is None else counted.sources
    spans = counted.spans[columns].tolist()
    spelled = [
        texts[i].spell(a, b) for i, (a, b) in zip(sources[columns].tolist(), spans, strict=True)
    ]
    order = sorted(range(len(spelled)), key=spelled.__getitem__)
    counts = _columns(counted.counts, columns[order])
    counts.sort_indices()
    return [spelled[i] for i in order], counts


def _columns(counts: sp.csr_matrix, columns: np.ndarray) -> sp.csr_matrix:
    """``counts[:, columns]`` for distinct ``columns``, indices left unsorted.

    Made in place: ``counts``' arrays are overwritten and shared by the result.
    """
    new_column = np.full(counts.shape[1], -1, dtype=np.int32)
    new_column[columns] = np.arange(len(columns), dtype=np.int32)
    indptr = _select_columns(counts.indptr, counts.indices, counts.data, new_column)
    nnz = indptr[-1]
    return sp.csr_matrix(
        (counts.data[:nnz], counts.indices[:nnz], indptr), shape=(counts.shape[0], len(columns))
    )


@njit(nogil=True, cache=True)
def _select_columns(indptr, indices, data, new_column):
    # Compacted forward in place (an entry never moves later): no second copy of
    # the group's counts, which on a large registry was the vectoriser's peak.
    out_indptr = np.zeros(indptr.shape[0], dtype=np.int64)
    entry = 0
    for row in range(indptr.shape[0] - 1):
        for j in range(indptr[row], indptr[row + 1]):
            column = new_column[indices[j]]
            if column >= 0:
                indices[entry] = column
                data[entry] = data[j]
                entry += 1
        out_indptr[row + 1] = entry
    return out_indptr
