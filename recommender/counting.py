"""Term counting for the vectoriser: chunks of documents counted in parallel, merged.

scikit-learn's ``CountVectorizer`` counts in one process with a Python step per
token. Here each worker counts a chunk of documents with ``collections.Counter``
(one C-level pass per text, a Python step only per distinct term of a document) and
returns its own small vocabulary; the chunks are then merged into one vocabulary,
sorted as scikit-learn sorts it, and pruned by document frequency exactly as
``CountVectorizer(min_df=..., max_df=...)`` prunes. The result is the same count
matrix, so scikit-learn's ``TfidfTransformer`` then gives the same TF-IDF.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import scipy.sparse as sp

Analyzer = Callable[[Sequence[str]], Counter]


def count_terms(count: Analyzer, docs: Sequence[Sequence[str]]) -> tuple[list[str], sp.csr_matrix]:
    """Count the terms of each document, growing a vocabulary as they appear.

    Parameters
    ----------
    count : callable
        Maps a document (a list of strings) to a ``Counter`` of its terms.
    docs : sequence of documents, length n_docs

    Returns
    -------
    terms : list of str
        The column terms (in no particular order; ``merge_counts`` sorts them).
    counts : csr_matrix of shape (n_docs, len(terms)), dtype int32
    """
    vocabulary: dict[str, int] = {}
    column_of = vocabulary.__getitem__
    indptr, indices, values = [0], [], []
    for doc in docs:
        counts = count(doc)
        # Set operations and map() run in C: Python only touches terms never seen.
        for term in set(counts).difference(vocabulary):
            vocabulary[term] = len(vocabulary)
        indices.extend(map(column_of, counts))
        values.extend(counts.values())
        indptr.append(len(indices))
    return list(vocabulary), _csr(values, indices, indptr, len(vocabulary))


def count_known_terms(
    count: Analyzer, docs: Sequence[Sequence[str]], vocabulary: Mapping[str, int]
) -> sp.csr_matrix:
    """Count only the terms of ``vocabulary``, in its columns (for new documents).

    Returns
    -------
    counts : csr_matrix of shape (n_docs, len(vocabulary)), dtype int32
    """
    indptr, indices, values = [0], [], []
    for doc in docs:
        for term, n in count(doc).items():
            column = vocabulary.get(term)
            if column is not None:
                indices.append(column)
                values.append(n)
        indptr.append(len(indices))
    return _csr(values, indices, indptr, len(vocabulary))


def _csr(values: list[int], indices: list[int], indptr: list[int], width: int) -> sp.csr_matrix:
    arrays = (
        np.asarray(values, dtype=np.int32),
        np.asarray(indices, dtype=np.int32),
        np.asarray(indptr, dtype=np.int64),
    )
    matrix = sp.csr_matrix(arrays, shape=(len(indptr) - 1, width))
    matrix.sort_indices()
    return matrix


def merge_counts(
    parts: Sequence[tuple[list[str], sp.csr_matrix]],
) -> tuple[list[str], sp.csr_matrix]:
    """Stack the counts of consecutive chunks over one vocabulary, terms sorted.

    Returns
    -------
    terms : list of str, sorted
    counts : csr_matrix of shape (sum of chunk rows, len(terms)), dtype int32
    """
    union: dict[str, int] = {}
    remapped = []
    for terms, counts in parts:
        add = union.setdefault
        column_of = np.asarray([add(t, len(union)) for t in terms], dtype=np.int64)
        remapped.append((column_of, counts))
    terms = sorted(union)
    # Column in first-seen order -> column in sorted order.
    sorted_column = np.empty(len(terms), dtype=np.int64)
    sorted_column[[union[t] for t in terms]] = np.arange(len(terms))
    blocks = []
    for column_of, counts in remapped:
        columns = sorted_column[column_of[counts.indices]].astype(np.int32)
        shape = (counts.shape[0], len(terms))
        blocks.append(sp.csr_matrix((counts.data, columns, counts.indptr), shape=shape))
    if not blocks:
        return terms, sp.csr_matrix((0, len(terms)), dtype=np.int32)
    matrix = sp.vstack(blocks, format="csr")
    matrix.sort_indices()
    return terms, matrix


def prune_terms(
    terms: list[str], counts: sp.csr_matrix, min_df: float, max_df: float
) -> tuple[list[str], sp.csr_matrix]:
    """Drop the columns whose document frequency is out of bounds.

    ``min_df`` and ``max_df`` are document counts when integers and shares of the
    documents when floats, as in scikit-learn's ``CountVectorizer``.
    """
    n_docs = counts.shape[0]
    low = min_df if isinstance(min_df, int | np.integer) else min_df * n_docs
    high = max_df if isinstance(max_df, int | np.integer) else max_df * n_docs
    df = np.bincount(counts.indices, minlength=len(terms))
    keep = np.flatnonzero((df >= low) & (df <= high))
    return [terms[i] for i in keep], counts[:, keep].tocsr()
