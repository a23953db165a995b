"""One field group's fitted model: its vocabulary, IDF and BM25 weighting.

:class:`~recommender.text.vectorizer.FieldGroupVectorizer` holds one per group and lays
their blocks side by side; a model turns a group's texts into its block on its own.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import scipy.sparse as sp

from recommender.text._tokenizer_compiled import EncodedTexts, TermTable, count_known_terms
from recommender.text.fields import FieldGroup
from recommender.text.readable import readable_mask
from recommender.text.tokenizer import ItemAnalyzer
from recommender.text.weighting import (
    average_length,
    bm25_weights,
    mean_norm,
    pivot_normalise,
    smooth_idf,
)


class GroupModel:
    """One field group's fitted vocabulary and weighting.

    Parameters
    ----------
    group : FieldGroup
    terms : list of str
        Column terms, sorted.
    idf : ndarray of shape (len(terms),), dtype float32
        scikit-learn's smoothed IDF.
    avg_length : float
        Mean count of terms per non-empty document (BM25's average length).
    pivot : float
        Mean norm of the non-empty BM25 rows (the pivot of the length normalisation).
    """

    def __init__(
        self, group: FieldGroup, terms: list[str], idf: np.ndarray, avg_length: float, pivot: float
    ) -> None:
        if len(terms) != len(idf):
            raise ValueError(f"field group {group.name!r}: {len(terms)} terms but {len(idf)} IDFs")
        self.group = group
        self.terms = terms
        self.analyzer = analyzer_for(group)
        self.idf = np.asarray(idf, dtype=np.float32)
        self.avg_length = float(avg_length)
        self.pivot = float(pivot)

    @classmethod
    def fit(
        cls, group: FieldGroup, terms: list[str], counts: sp.csr_matrix
    ) -> tuple[GroupModel, sp.csr_matrix]:
        """Learn IDF, average length and pivot from pruned counts; return the model
        and the group's block of shape (n_docs, len(terms)), float32."""
        idf, avg_length = smooth_idf(counts), average_length(counts)
        weights = bm25_weights(counts, idf, avg_length, group.k1, group.b)
        model = cls(group, terms, idf, avg_length, mean_norm(weights))
        return model, pivot_normalise(weights, model.pivot, group.norm_power)

    def weigh(self, counts: sp.csr_matrix) -> sp.csr_matrix:
        """The group's block for term counts in this vocabulary's columns."""
        g = self.group
        weights = bm25_weights(counts, self.idf, self.avg_length, g.k1, g.b)
        return pivot_normalise(weights, self.pivot, g.norm_power)

    @cached_property
    def table(self) -> TermTable:
        """The vocabulary by term hash, built on first use (a few ms per 100k terms)."""
        return TermTable(self.terms)

    @cached_property
    def readable_columns(self) -> np.ndarray:
        """:func:`readable_mask` of the terms, shape (len(terms),), made on first use."""
        return readable_mask(self.terms)

    def transform(self, texts: EncodedTexts) -> sp.csr_matrix:
        """The group's block of ``texts``; terms outside the vocabulary are ignored."""
        return self.weigh(count_known_terms(texts, self.analyzer, self.table))

    def stats(self) -> dict[str, float]:
        return {"avg_length": self.avg_length, "pivot": self.pivot}


def analyzer_for(group: FieldGroup) -> ItemAnalyzer:
    return ItemAnalyzer(
        ngram_range=group.ngram_range, whole_items=group.whole_items, item_words=group.item_words
    )
