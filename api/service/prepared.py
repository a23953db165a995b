"""What the service derives once per loaded index, instead of once per request.

:func:`prepare` gives the :class:`PreparedIndex` of a :class:`TrialIndex`, made on
first use and kept as long as that index object lives (a reload brings a new index
object, hence a new one; the old one goes with the old index).
"""

from __future__ import annotations

import hashlib
import json
import threading
import weakref

import numpy as np

from api.service.display import DisplayRecord, decode_display
from recommender.index import TrialIndex
from recommender.neighbours import NO_NEIGHBOUR

_PREPARED: weakref.WeakKeyDictionary[TrialIndex, PreparedIndex] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


class PreparedIndex:
    """Per-index helpers of the hot path.

    Parameters
    ----------
    index : TrialIndex

    Attributes
    ----------
    explainer_ : Explainer
        The ``why`` of all results of a query at once.
    build_tag_ : str
        16 hex digits identifying this build (a hash of the files' hashes recorded in
        its ``meta.json``): part of every ETag, so a new build invalidates them all.
    index_info_ : dict
        The ``index`` object of every response (``built_at``, ``studies``).
    """

    def __init__(self, index: TrialIndex) -> None:
        self.index = index
        self.explainer_ = index.explainer
        self.build_tag_ = build_tag(index.meta)
        # Plain views of the mapped arrays (see Explainer): the lookup reads one row.
        self.neighbour_positions_ = np.asarray(index.neighbour_indices)
        self.neighbour_scores_ = np.asarray(index.neighbour_scores)
        self.index_info_ = {"built_at": index.built_at, "studies": len(index)}

    def stored_neighbours(self, position: int, k: int) -> tuple[list[int], list[float]]:
        """Rows and scores of the first ``k`` precomputed neighbours of row ``position``.

        What :meth:`TrialIndex.similar` answers without a filter and for ``k`` up to
        the stored list's length (see :func:`api.service.answered_from_stored_lists`),
        without building a :class:`Neighbour` per result.
        """
        rows = self.neighbour_positions_[position, :k]
        kept = rows != NO_NEIGHBOUR
        return rows[kept].tolist(), self.neighbour_scores_[position, :k][kept].tolist()

    def display(self, position: int) -> DisplayRecord:
        """The shown fields of the record at ``position``."""
        return self.index.records.partial(position, decode_display)


def build_tag(meta: dict) -> str:
    """16 hex digits that change with any file of the build (or its build time)."""
    identity = {"built_at": meta.get("built_at"), "files": meta.get("files")}
    text = json.dumps(identity, sort_keys=True, ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def prepare(index: TrialIndex) -> PreparedIndex:
    """The :class:`PreparedIndex` of ``index``, made on first call."""
    prepared = _PREPARED.get(index)
    if prepared is None:
        with _LOCK:  # made once even when the first requests arrive together
            prepared = _PREPARED.get(index)
            if prepared is None:
                prepared = _PREPARED[index] = PreparedIndex(index)
    return prepared
