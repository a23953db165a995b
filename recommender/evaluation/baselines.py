"""Systems the default index is compared with, built in memory from records.

* :func:`field_group_ranker`: the index's own vectoriser with any field groups (the
  default, one group alone, the default without MeSH fields, a tuning candidate);
* :func:`tfidf_ranker`: the baseline, one plain scikit-learn TF-IDF (sublinear tf,
  ``min_df=2``, English stop words, cosine) over the concatenated text of
  :data:`PLAIN_FIELDS`: titles, summaries, conditions, keywords, intervention names;
* :class:`BM25Ranker`: Okapi BM25 (the ``bm25s`` package, English stop words) over
  the same concatenated text.

scikit-learn and ``bm25s`` are in the ``evaluation`` extra (building and serving do
not need them), imported when a baseline is made.

Each returns a :class:`~recommender.evaluation.rankers.Ranker` that also ranks free text, so
all are scored by the same :func:`~recommender.evaluation.runner.evaluate` and
:func:`~recommender.evaluation.runner.evaluate_text` (the protocol of the reference figures
in ``../shared/labels/README.md``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from recommender.core import TrialRecord
from recommender.evaluation.rankers import VectorRanker, free_text_vectorizer
from recommender.index.asked import AskedVectors
from recommender.infra import require
from recommender.text import (
    DEFAULT_FIELD_GROUPS,
    TEXT_FIELDS,
    FieldGroup,
    FieldGroupVectorizer,
    field_items,
)

if TYPE_CHECKING:
    from sklearn.feature_extraction.text import TfidfVectorizer

MESH_FIELDS: tuple[str, ...] = ("condition_mesh_terms", "intervention_mesh_terms")
# The baselines read the text the default's whole-text group reads.
PLAIN_FIELDS: tuple[str, ...] = TEXT_FIELDS


def default_fields(groups: Sequence[FieldGroup] = DEFAULT_FIELD_GROUPS) -> tuple[str, ...]:
    """Every record field the groups read, in group order, without repeats."""
    return tuple(dict.fromkeys(f for g in groups for f in g.fields))


def without_fields(groups: Iterable[FieldGroup], fields: Iterable[str]) -> tuple[FieldGroup, ...]:
    """``groups`` with ``fields`` taken out; a group left with no field is dropped."""
    drop = set(fields)
    kept = (replace(g, fields=tuple(f for f in g.fields if f not in drop)) for g in groups)
    return tuple(g for g in kept if g.fields)


def concatenated_text(record: TrialRecord, fields: Sequence[str] = PLAIN_FIELDS) -> str:
    """The record's ``fields`` as one text; list items end with a full stop.

    Interventions contribute their names only (not their other names), arm groups
    their labels; empty values are left out.
    """
    return " . ".join(field_items(record, fields, other_names=False))


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

    Returns
    -------
    VectorRanker
        Ranks free text as the service does a posted ``text``, and an indexed trial
        with the vector the service asks with (a thin trial's prose reading,
        :class:`AskedVectors`), by exact search.
    """
    vectorizer = FieldGroupVectorizer(groups, n_jobs=n_jobs)
    vectors = vectorizer.fit_transform(records)
    return VectorRanker(
        _ids(records),
        vectors,
        text_vectorizer=free_text_vectorizer(vectorizer),
        record_vectorizer=vectorizer.transform_queries,
        asked=AskedVectors(vectors, vectorizer, records).vectors_of,
    )


def tfidf_ranker(
    records: Sequence[TrialRecord], fields: Sequence[str] | None = None, *, min_df: int = 2
) -> VectorRanker:
    """The baseline: plain TF-IDF over one concatenated text per record, cosine.

    ``TfidfVectorizer(sublinear_tf=True, min_df=2, stop_words="english")``: unigrams
    of ``\\b\\w\\w+\\b``, lower case, 1 + log tf, smooth idf, L2-normalised rows.

    Parameters
    ----------
    records : sequence of TrialRecord, length n
        Sorted by ``nct_id``.
    fields : sequence of str, optional
        Record fields concatenated (:func:`concatenated_text`); :data:`PLAIN_FIELDS`
        by default.
    min_df : int, default 2
        Terms in fewer records are dropped (lower only for tiny test corpora).

    Returns
    -------
    VectorRanker
        Vectors of shape (n, n_terms), dtype float32; free text (``top_k_text``) is
        transformed by the same fitted vectoriser.
    """
    fields = PLAIN_FIELDS if fields is None else tuple(fields)
    vectorizer = plain_tfidf(min_df)
    vectors = vectorizer.fit_transform([concatenated_text(r, fields) for r in records])

    def record_vectorizer(asked: Sequence[TrialRecord]):
        return vectorizer.transform([concatenated_text(r, fields) for r in asked])

    return VectorRanker(
        _ids(records),
        vectors,
        text_vectorizer=vectorizer.transform,
        record_vectorizer=record_vectorizer,
    )


def plain_tfidf(min_df: int = 2) -> TfidfVectorizer:
    """The plain TF-IDF a competent user writes: sublinear tf, ``min_df``, English
    stop words, float32 (the baselines of the ranking and the speed benchmarks)."""
    text = require("sklearn.feature_extraction.text", extra="evaluation", purpose="plain TF-IDF")
    return text.TfidfVectorizer(
        sublinear_tf=True, min_df=min_df, stop_words="english", dtype=np.float32
    )


class BM25Ranker:
    """Okapi BM25 over one concatenated text per record; the query is a trial's text
    (:meth:`top_k`, :meth:`score`) or a free text (:meth:`top_k_text`).

    Tokens are ``bm25s.tokenize``'s with ``stopwords="en"`` (``\\b\\w\\w+\\b``, lower
    case, its English stop words, no stemming), for documents and queries alike.
    BM25 scores are not cosines and not symmetric; ranking only needs their order,
    and a record scoring 0 is never a result.

    Parameters
    ----------
    records : sequence of TrialRecord, length n
        Sorted by ``nct_id``.
    fields : sequence of str, optional
        Record fields concatenated (:func:`concatenated_text`); :data:`PLAIN_FIELDS`
        by default.
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
        bm25s = require("bm25s", extra="evaluation", purpose="the BM25 baseline")

        self.fields = PLAIN_FIELDS if fields is None else tuple(fields)
        self.ids = _ids(records)
        self._row = {str(nct_id): i for i, nct_id in enumerate(self.ids)}
        self._tokens = _tokenize([concatenated_text(r, self.fields) for r in records])
        self._bm25 = bm25s.BM25(k1=k1, b=b)
        self._bm25.index(self._tokens, show_progress=False)

    def __contains__(self, nct_id: object) -> bool:
        return nct_id in self._row

    def _token_scores(self, tokens: list[str]) -> np.ndarray:
        """BM25 score of every record for a tokenised query, shape (n,), dtype float64."""
        if not tokens:  # all stop words: bm25s cannot score an empty query
            return np.zeros(len(self.ids))
        return np.asarray(self._bm25.get_scores(tokens), dtype=np.float64)

    def _scores(self, query: str) -> np.ndarray:
        """BM25 score of every record for ``query``'s text, shape (n,), dtype float64."""
        return self._excluding(query, self._token_scores(self._tokens[self._row[query]]))

    def _record_scores(self, record: TrialRecord) -> np.ndarray:
        """BM25 score of every record for ``record``'s text, never its own row's."""
        tokens = _tokenize([concatenated_text(record, self.fields)])[0]
        return self._excluding(record.nct_id, self._token_scores(tokens))

    def _excluding(self, nct_id: str, scores: np.ndarray) -> np.ndarray:
        row = self._row.get(nct_id)
        if row is not None:
            scores[row] = -np.inf  # never the query itself
        return scores

    def _best(self, scores: np.ndarray, k: int) -> list[str]:
        """Ids of the ``k`` highest positive scores, best first, ties by id."""
        order = np.argsort(-scores, kind="stable")[:k]
        return [str(self.ids[i]) for i in order if scores[i] > 0]

    def top_k(self, queries: Sequence[str], k: int) -> list[list[str]]:
        return [self._best(self._scores(query), k) for query in queries]

    def top_k_text(self, texts: Sequence[str], k: int) -> list[list[str]]:
        """The ``k`` best-scoring records for each text, tokenised as the records were."""
        if not len(texts):
            return []
        return [self._best(self._token_scores(tokens), k) for tokens in _tokenize(texts)]

    def top_k_records(self, records: Sequence[TrialRecord], k: int) -> list[list[str]]:
        """The ``k`` best-scoring records for each record's text, never itself."""
        return [self._best(self._record_scores(record), k) for record in records]

    def score(self, query: str, candidates: Sequence[str]) -> np.ndarray:
        return self._of(self._scores(query), candidates)

    def score_record(self, record: TrialRecord, candidates: Sequence[str]) -> np.ndarray:
        return self._of(self._record_scores(record), candidates)

    def _of(self, scores: np.ndarray, candidates: Sequence[str]) -> np.ndarray:
        rows = [self._row.get(c, -1) for c in candidates]
        return np.array([scores[r] if r >= 0 else -np.inf for r in rows])


def _tokenize(texts: Sequence[str]) -> list[list[str]]:
    """``bm25s`` tokens of each text: lower case, English stop words out, as str."""
    bm25s = require("bm25s", extra="evaluation", purpose="the BM25 baseline")
    return bm25s.tokenize(list(texts), stopwords="en", return_ids=False, show_progress=False)
