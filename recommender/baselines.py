"""Systems the default index is compared with, built in memory from records.

* :func:`field_group_ranker`: the index's own vectoriser with any field groups (the
  default, one group alone, the default without MeSH fields, a tuning candidate);
* :func:`tfidf_ranker`: the baseline, one plain scikit-learn TF-IDF over all the
  text the default reads, concatenated;
* :class:`BM25Ranker`: Okapi BM25 (the ``bm25s`` package, a dev dependency) over
  the same concatenated text.

Each returns a :class:`~recommender.evaluate.Ranker`, so all are scored by the same
:func:`~recommender.evaluate.evaluate`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

from recommender.evaluate import VectorRanker
from recommender.records import TrialRecord
from recommender.text import DEFAULT_FIELD_GROUPS, FieldGroup, FieldGroupVectorizer

MESH_FIELDS: tuple[str, ...] = ("condition_mesh_terms", "intervention_mesh_terms")


def default_fields(groups: Sequence[FieldGroup] = DEFAULT_FIELD_GROUPS) -> tuple[str, ...]:
    """Every record field the groups read, in group order, without repeats."""
    return tuple(dict.fromkeys(f for g in groups for f in g.fields))


def without_fields(groups: Iterable[FieldGroup], fields: Iterable[str]) -> tuple[FieldGroup, ...]:
    """``groups`` with ``fields`` taken out; a group left with no field is dropped."""
    drop = set(fields)
    kept = (replace(g, fields=tuple(f for f in g.fields if f not in drop)) for g in groups)
    return tuple(g for g in kept if g.fields)


def concatenated_text(record: TrialRecord, fields: Sequence[str]) -> str:
    """The record's ``fields`` as one text; list items end with a full stop."""
    return " . ".join(FieldGroup("text", tuple(fields)).items(record))


def _ids(records: Sequence[TrialRecord]) -> np.ndarray:
    ids = np.asarray([r.nct_id for r in records])
    if len(ids) > 1 and not np.all(ids[1:] > ids[:-1]):
        raise ValueError("records must be sorted by nct_id without duplicates")
    return ids


def field_group_ranker(
    records: Sequence[TrialRecord],
    groups: Sequence[FieldGroup] = DEFAULT_FIELD_GROUPS,
    *,
    n_jobs: int = 1,
) -> VectorRanker:
    """Cosine over :class:`FieldGroupVectorizer` vectors, as a built index ranks.

    Parameters
    ----------
    records : sequence of TrialRecord, length n
        Sorted by ``nct_id``.
    groups : sequence of FieldGroup
    n_jobs : int, default 1
        Processes for fitting the groups.
    """
    vectors = FieldGroupVectorizer(groups, n_jobs=n_jobs).fit_transform(records)
    return VectorRanker(_ids(records), vectors)


def tfidf_ranker(
    records: Sequence[TrialRecord], fields: Sequence[str] | None = None
) -> VectorRanker:
    """The baseline: scikit-learn's default TF-IDF with English stop words over one
    concatenated text per record (unigrams, raw tf, smooth idf, L2 norm)."""
    fields = default_fields() if fields is None else fields
    texts = [concatenated_text(r, fields) for r in records]
    vectors = TfidfVectorizer(stop_words="english", dtype=np.float32).fit_transform(texts)
    return VectorRanker(_ids(records), vectors)


class BM25Ranker:
    """Okapi BM25 over one concatenated text per record; the query is a trial's text.

    Tokens are scikit-learn's (``\\b\\w\\w+\\b``, lower case, English stop words), as
    in :func:`tfidf_ranker`, so the two differ only in weighting. BM25 scores are
    not cosines and not symmetric; ranking only needs their order.

    Parameters
    ----------
    records : sequence of TrialRecord, length n
        Sorted by ``nct_id``.
    fields : sequence of str, optional
        Defaults to every field the default index reads.
    k1, b : float
        BM25 saturation and length normalisation (Lucene's defaults).
    """

    def __init__(
        self,
        records: Sequence[TrialRecord],
        fields: Sequence[str] | None = None,
        *,
        k1: float = 1.2,
        b: float = 0.75,
    ) -> None:
        import bm25s

        fields = default_fields() if fields is None else fields
        self.ids = _ids(records)
        self._row = {str(nct_id): i for i, nct_id in enumerate(self.ids)}
        texts = [concatenated_text(r, fields) for r in records]
        self._tokens = bm25s.tokenize(texts, stopwords="en", return_ids=False, show_progress=False)
        self._bm25 = bm25s.BM25(k1=k1, b=b)
        self._bm25.index(self._tokens, show_progress=False)

    def __contains__(self, nct_id: object) -> bool:
        return nct_id in self._row

    def _scores(self, query: str) -> np.ndarray:
        """BM25 score of every record for ``query``'s text, shape (n,), dtype float64."""
        row = self._row[query]
        scores = np.asarray(self._bm25.get_scores(self._tokens[row]), dtype=np.float64)
        scores[row] = -np.inf  # never the query itself
        return scores

    def top_k(self, queries: Sequence[str], k: int) -> list[list[str]]:
        rankings = []
        for query in queries:
            scores = self._scores(query)
            order = np.argsort(-scores, kind="stable")[:k]
            rankings.append([str(self.ids[i]) for i in order if scores[i] > 0])
        return rankings

    def score(self, query: str, candidates: Sequence[str]) -> np.ndarray:
        scores = self._scores(query)
        rows = [self._row.get(c, -1) for c in candidates]
        return np.array([scores[r] if r >= 0 else -np.inf for r in rows])
