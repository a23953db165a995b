"""How an indexed trial is asked about: the vector its related trials are ranked by.

A trial with a condition or an intervention is asked about with its stored row (the
scores of two such trials are a dot product of their rows, and its stored list holds
its nearest). A thin trial (titles, summary and description only: 84% of the
registry corpus) is asked about as a draft with the same fields would be: its prose
also read into the condition and intervention groups
(:meth:`FieldGroupVectorizer.transform_queries`), so its words meet the trials'
lists. That vector is not stored (it would add 83% to the vectors), and its nearest
trials are not those of its stored list (found with its row), so it is made when
asked for (the stored row rescaled, plus the record's prose read into the list
groups: :func:`extend_pivoted`) and searched from the stored list
(:meth:`TrialIndex.asked_kneighbors`); the latest readings are kept with their
answers.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from recommender.core import TrialRecord
from recommender.text import FieldGroupVectorizer, extend_pivoted

#: Thin trials whose reading and answer are kept per index (about 5 KB each): the
#: trials asked about most often are answered without reading their record again.
CACHED_READINGS = 4096


@dataclass
class _Kept:
    vector: sp.csr_matrix
    answer: tuple[np.ndarray, np.ndarray] | None = None


class AskedVectors:
    """The vector each indexed trial is asked about with; thin trials' readings (and
    answers) kept for the trials asked about lately.

    Parameters
    ----------
    vectors : csr_matrix of shape (n_trials, n_features), float32
        The stored rows.
    vectorizer : FieldGroupVectorizer
        The index's, fitted.
    records : sequence of TrialRecord, length n_trials
        The records of the rows, in row order (an index's :class:`RecordStore`).
    cached : int, default CACHED_READINGS
        Thin trials whose reading (and answer, :meth:`keep_answer`) are kept, the
        least recently asked dropped first.

    Attributes
    ----------
    fillable_ : ndarray of shape (n_features,), dtype bool
        :meth:`FieldGroupVectorizer.fillable_columns`; all False for an index built
        before thin queries read prose, whose trials are all asked with their rows.
    """

    def __init__(
        self,
        vectors: sp.csr_matrix,
        vectorizer: FieldGroupVectorizer,
        records: Sequence[TrialRecord],
        cached: int = CACHED_READINGS,
    ) -> None:
        self.vectors = vectors
        self.vectorizer = vectorizer
        self.records = records
        self.cached = cached
        self.fillable_ = vectorizer.fillable_columns()
        # Plain views of the mapped arrays: slicing a np.memmap wraps every result.
        self._indptr = np.asarray(vectors.indptr)
        self._indices = np.asarray(vectors.indices)
        self._kept: OrderedDict[int, _Kept] = OrderedDict()
        self._lock = threading.Lock()

    def reads_prose(self, position: int) -> bool:
        """Whether the trial at ``position`` is asked about with its prose read into
        the list groups (its row has no term there), not with its row."""
        if not self.fillable_.any():
            return False
        columns = self._indices[self._indptr[position] : self._indptr[position + 1]]
        return not self.fillable_[columns].any()

    def kept(self, position: int, k: int = 1) -> bool:
        """Whether the trial at ``position`` is answered, ``k`` results, without
        reading its record or searching: a trial asked with its row, or a thin trial
        whose kept answer holds ``k``."""
        if not self.reads_prose(position):
            return True
        kept = self._kept.get(position)
        return kept is not None and kept.answer is not None and len(kept.answer[0]) >= k

    def vector(self, position: int) -> sp.csr_matrix:
        """The (1, n_features) float32 vector the trial at ``position`` asks with, each
        column once."""
        if not self.reads_prose(position):
            return self.vectors[position]
        kept = self._recall(position)
        if kept is not None:
            return kept.vector
        reading = self._read([position])
        with self._lock:
            self._kept[position] = _Kept(reading)
            while len(self._kept) > self.cached:
                self._kept.popitem(last=False)
        return reading

    def answer(self, position: int) -> tuple[np.ndarray, np.ndarray] | None:
        """The rows and scores kept by :meth:`keep_answer` for a thin trial, or None."""
        kept = self._recall(position)
        return None if kept is None else kept.answer

    def keep_answer(self, position: int, rows: np.ndarray, scores: np.ndarray) -> None:
        """Keep a thin trial's unfiltered nearest rows and their scores with its
        reading (dropped with it)."""
        with self._lock:
            kept = self._kept.get(position)
            if kept is not None:
                kept.answer = (rows, scores)

    def _recall(self, position: int) -> _Kept | None:
        with self._lock:
            kept = self._kept.get(position)
            if kept is not None:
                self._kept.move_to_end(position)
            return kept

    def vectors_of(self, positions: Sequence[int] | np.ndarray) -> sp.csr_matrix:
        """The vectors of several trials at once, shape (len(positions), n_features):
        thin trials' records read together (the export, the evaluation)."""
        positions = np.asarray(positions, dtype=np.int64)
        thin = np.array([self.reads_prose(int(p)) for p in positions], dtype=bool)
        if not thin.any():
            return self.vectors[positions]
        stacked = sp.vstack(
            [self.vectors[positions[~thin]], self._read(positions[thin])], format="csr"
        )
        order = np.argsort(np.concatenate([np.flatnonzero(~thin), np.flatnonzero(thin)]))
        return stacked[order]

    def forget(self) -> None:
        """Drop every kept reading and answer (a benchmark asking as after a start)."""
        with self._lock:
            self._kept.clear()

    def _read(self, positions: Sequence[int] | np.ndarray) -> sp.csr_matrix:
        records = [self.records[int(p)] for p in positions]
        vectorizer = self.vectorizer
        if vectorizer.norm_power < 1:
            # The row is the rest of the reading, rescaled: read only the prose.
            rows = self.vectors[np.asarray(positions, dtype=np.int64)]
            reading = extend_pivoted(
                rows, vectorizer.prose_reading(records), vectorizer.pivot_, vectorizer.norm_power
            )
        else:  # unit rows keep no length to rescale by
            reading = vectorizer.transform_queries(records)
        reading.sum_duplicates()  # an explanation matches each column once
        return reading
