"""Systems that rank, as the evaluation sees them (:class:`Ranker`): a saved index as
the service ranks (:class:`IndexRanker`), or any unit-norm vectors in memory
(:class:`VectorRanker`, what the baselines and experiments use).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np
import scipy.sparse as sp

from recommender.core import DRAFT_ID, TrialRecord
from recommender.index import TrialIndex
from recommender.neighbours import NO_NEIGHBOUR, CosineNeighbours

if TYPE_CHECKING:
    from recommender.text import FieldGroupVectorizer


TextVectorizer = Callable[[Sequence[str]], sp.csr_matrix]
RecordVectorizer = Callable[[Sequence[TrialRecord]], sp.csr_matrix]


class Ranker(Protocol):
    """What the evaluation needs from a system: top-k lists and pair scores."""

    def __contains__(self, nct_id: object) -> bool: ...

    def top_k(self, queries: Sequence[str], k: int) -> list[list[str]]:
        """The ``k`` best trials for each (indexed) query, never the query itself."""
        ...

    def score(self, query: str, candidates: Sequence[str]) -> np.ndarray:
        """Similarity of ``query`` to each candidate; -inf for one not indexed."""
        ...

    def top_k_text(self, texts: Sequence[str], k: int) -> list[list[str]]:
        """The ``k`` best trials for each free-text query (:func:`evaluate_text`)."""
        ...

    def top_k_records(self, records: Sequence[TrialRecord], k: int) -> list[list[str]]:
        """The ``k`` best trials for each record asked with (a trial reduced to a thin
        record, a draft), never the record's own id."""
        ...

    def score_record(self, record: TrialRecord, candidates: Sequence[str]) -> np.ndarray:
        """Similarity of ``record`` to each candidate; -inf for one not indexed."""
        ...


def free_text_vectorizer(vectorizer: FieldGroupVectorizer) -> TextVectorizer:
    """Vectorise texts as the service does a posted ``text`` with no other field.

    Each text is read as the free text of an empty draft record (id :data:`DRAFT_ID`).

    Parameters
    ----------
    vectorizer : FieldGroupVectorizer
        Fitted.

    Returns
    -------
    callable
        ``texts`` (sequence of str, length n) to a csr_matrix of shape
        (n, n_features), dtype float32.
    """
    draft = TrialRecord(DRAFT_ID)

    def vectorize(texts: Sequence[str]) -> sp.csr_matrix:
        return vectorizer.transform_queries([draft] * len(texts), free_texts=list(texts))

    return vectorize


class VectorRanker:
    """Cosine ranking over unit-norm rows, e.g. a vectoriser's output in memory.

    Parameters
    ----------
    ids : ndarray of shape (n,), dtype str
        NCT ids of the rows, sorted.
    vectors : sparse matrix of shape (n, n_features), dtype float32
        Unit L2-norm rows.
    search : CosineNeighbours, optional
        Already fitted on ``vectors`` (an index's postings); fitted here if absent.
    text_vectorizer : callable, optional
        Texts (sequence of str, length m) to query rows, a sparse matrix of shape
        (m, n_features), dtype float32, in the space of ``vectors``; needed only by
        :meth:`top_k_text`. A row's norm does not change its ranking.
    record_vectorizer : callable, optional
        Records (sequence of TrialRecord, length m) to query rows, as
        ``text_vectorizer`` does texts; needed only by :meth:`top_k_records` and
        :meth:`score_record`.
    asked : callable, optional
        Rows (ndarray of int, length m) to the (m, n_features) vectors those indexed
        trials are asked about with (:meth:`AskedVectors.vectors_of`: a thin trial's
        prose reading), for :meth:`top_k` and :meth:`score`; their own rows if absent.
    """

    def __init__(
        self,
        ids: np.ndarray,
        vectors: sp.spmatrix,
        search: CosineNeighbours | None = None,
        *,
        text_vectorizer: TextVectorizer | None = None,
        record_vectorizer: RecordVectorizer | None = None,
        asked: Callable[[np.ndarray], sp.csr_matrix] | None = None,
    ) -> None:
        self.ids = np.asarray(ids)
        self.vectors = sp.csr_matrix(vectors, dtype=np.float32)
        self.search = search or CosineNeighbours(n_jobs=1).fit(self.vectors)
        self.text_vectorizer = text_vectorizer
        self.record_vectorizer = record_vectorizer
        self.asked = asked
        self._row = {str(nct_id): i for i, nct_id in enumerate(self.ids)}

    def __contains__(self, nct_id: object) -> bool:
        return nct_id in self._row

    def top_k(self, queries: Sequence[str], k: int) -> list[list[str]]:
        rows = np.array([self._row[q] for q in queries], dtype=np.int64)
        if not len(rows):
            return []
        found, _ = self.search.kneighbors(self._asked_rows(rows), k, exclude=rows)
        return self._result_ids(found)

    def _asked_rows(self, rows: np.ndarray) -> sp.csr_matrix:
        return self.vectors[rows] if self.asked is None else self.asked(rows)

    def top_k_text(self, texts: Sequence[str], k: int) -> list[list[str]]:
        """The ``k`` rows of highest cosine to each text's vector, best first.

        Raises
        ------
        TypeError
            When the ranker was made without a ``text_vectorizer``.
        """
        if self.text_vectorizer is None:
            raise TypeError("this ranker has no text_vectorizer: it cannot rank free text")
        if not len(texts):
            return []
        found, _ = self.search.kneighbors(self.text_vectorizer(list(texts)), k)
        return self._result_ids(found)

    def top_k_records(self, records: Sequence[TrialRecord], k: int) -> list[list[str]]:
        """The ``k`` rows of highest score to each record's vector, never its own row.

        Raises
        ------
        TypeError
            When the ranker was made without a ``record_vectorizer``.
        """
        if not len(records):
            return []
        own = np.array([self._row.get(r.nct_id, -1) for r in records], dtype=np.int64)
        found, _ = self.search.kneighbors(self._record_rows(records), k, exclude=own)
        return self._result_ids(found)

    def score_record(self, record: TrialRecord, candidates: Sequence[str]) -> np.ndarray:
        return self._scores(self._record_rows([record]), candidates)

    def _record_rows(self, records: Sequence[TrialRecord]) -> sp.csr_matrix:
        if self.record_vectorizer is None:
            raise TypeError("this ranker has no record_vectorizer: it cannot rank records")
        return self.record_vectorizer(list(records))

    def _result_ids(self, found: np.ndarray) -> list[list[str]]:
        """Ids of a (n_queries, k) array of rows, without the -1 padding."""
        return [[str(self.ids[i]) for i in row if i != NO_NEIGHBOUR] for row in found]

    def score(self, query: str, candidates: Sequence[str]) -> np.ndarray:
        return self._scores(self._asked_rows(np.array([self._row[query]])), candidates)

    def _scores(self, query: sp.csr_matrix, candidates: Sequence[str]) -> np.ndarray:
        """Dot product of one query row with each candidate's row; -inf for one absent."""
        rows = np.array([self._row.get(c, -1) for c in candidates], dtype=np.int64)
        scores = np.full(len(candidates), -np.inf)
        known = rows >= 0
        if known.any():
            scores[known] = (self.vectors[rows[known]] @ query.T).toarray().ravel()
        return scores


class IndexRanker(VectorRanker):
    """A saved index, ranked as the service ranks: its precomputed neighbour lists
    (an exact search when ``k`` exceeds them), its stored vectors for re-ranking, and
    its vectoriser for free text, read as the service reads a posted ``text``."""

    def __init__(self, index: TrialIndex) -> None:
        super().__init__(
            index.ids,
            index.vectors,
            search=index.search,
            text_vectorizer=free_text_vectorizer(index.vectorizer),
            record_vectorizer=index.vectorizer.transform_queries,
            asked=index.asked.vectors_of,
        )
        self.index = index

    def top_k(self, queries: Sequence[str], k: int) -> list[list[str]]:
        return [[n.nct_id for n in self.index.similar(q, k)] for q in queries]
