"""What the routes do, without HTTP: answer a query from one :class:`TrialIndex`.

Both the JSON API and the HTML page call these, so they can not drift apart. Errors
are the engine's exceptions (``InvalidNctIdError``, ``NotInIndexError``,
``UnknownFacetValueError``, ``EmptyQueryError``); ``api.errors`` maps them to status
codes. Every title shown is :func:`recommender.core.display_title`'s, as in the
command line and the Python API.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from api.schemas import SimilarQuery, SimilarResponse
from api.service.display import DisplayRecord
from api.service.prepared import PreparedIndex, prepare
from recommender.core import (
    DisplayTitle,
    TrialRecord,
    draft_record,
    draft_title,
)
from recommender.index import NotInIndexError, TrialIndex

WHY_TERMS = 3
DECIMALS = 6


def facet_filters(
    status: Sequence[str] = (), phase: Sequence[str] = (), study_type: Sequence[str] = ()
) -> dict[str, list[str]]:
    """The filter mapping :meth:`Facets.allowed` takes, from the request's lists."""
    return {"status": list(status), "phase": list(phase), "study_type": list(study_type)}


def similar_to_trial(
    index: TrialIndex, nct_id: str, k: int, filters: dict[str, list[str]]
) -> SimilarResponse:
    """The ``k`` indexed trials most like the indexed trial ``nct_id``.

    Filters are applied before ranking (see :meth:`TrialIndex.similar`).
    """
    return SimilarResponse.model_validate(similar_to_trial_payload(index, nct_id, k, filters))


def answered_from_stored_lists(index: TrialIndex, k: int, filters: dict[str, list[str]]) -> bool:
    """Whether :func:`similar_to_trial` is a lookup in the precomputed lists, not a
    search: no filter, and ``k`` no more than the lists hold (tens of microseconds). A
    thin trial is searched with its reading instead (:meth:`TrialIndex.lookup_query`),
    or answered from its kept answer (:func:`answered_on_the_loop`)."""
    return k <= index.neighbour_indices.shape[1] and not any(filters.values())


def answered_on_the_loop(
    index: TrialIndex, nct_id: str, k: int, filters: dict[str, list[str]]
) -> bool:
    """Whether answering ``GET /similar/{nct_id}`` is quick enough to do on the event
    loop: a lookup in the stored lists (:func:`answered_from_stored_lists`) of a trial
    asked about with its row or with a reading already kept. A thin trial asked about
    for the first time has its record read as a query (a few milliseconds of Python):
    that goes to a thread, like a search. An id that is malformed or not indexed is
    answered at once (with its error)."""
    if not answered_from_stored_lists(index, k, filters):
        return False
    try:
        return index.asked.kept(index.position(nct_id), k)
    except (ValueError, NotInIndexError):  # InvalidNctIdError is a ValueError
        return True


def similar_to_trial_payload(
    index: TrialIndex, nct_id: str, k: int, filters: dict[str, list[str]]
) -> dict[str, Any]:
    """:func:`similar_to_trial` as a JSON-ready dict, for the routes that encode it
    themselves (no model is built and validated per result)."""
    position = index.position(nct_id)
    prepared = prepare(index)
    record = prepared.display(position)
    if answered_from_stored_lists(index, k, filters) and not index.asked.reads_prose(position):
        positions, scores = prepared.stored_neighbours(position, k)
        query_indices, query_data = prepared.explainer_.query_row(position)
    else:  # a search, or a thin trial asked with its reading (its answer maybe kept)
        allowed = index.facets.allowed(filters)
        neighbours = index.similar(record.nct_id, k, allowed=allowed)
        positions, scores = [n.position for n in neighbours], [n.score for n in neighbours]
        query = index.lookup_query(position)
        query_indices, query_data = query.indices, query.data
    return _payload(
        prepared, record.nct_id, record.display_title, query_indices, query_data, positions, scores
    )


def similar_to_query(index: TrialIndex, query: SimilarQuery) -> SimilarResponse:
    """The ``query.k`` indexed trials most like a posted text or partial trial.

    Raises
    ------
    EmptyQueryError
        When the query has no words, or none that the index has seen.
    """
    return SimilarResponse.model_validate(similar_to_query_payload(index, query))


def similar_to_query_payload(index: TrialIndex, query: SimilarQuery) -> dict[str, Any]:
    """:func:`similar_to_query` as a JSON-ready dict."""
    record = query_record(query)
    vector = index.query_vector(record, query.text)
    allowed = index.facets.allowed(facet_filters(query.status, query.phase, query.study_type))
    neighbours = index.similar_to_vector(vector, query.k, allowed=allowed)
    return _payload(
        prepare(index),
        None,
        draft_title(record, query.text),
        vector.indices,
        vector.data,
        [n.position for n in neighbours],
        [n.score for n in neighbours],
    )


def query_record(query: SimilarQuery) -> TrialRecord:
    """A :class:`TrialRecord` holding the query's fields (its free text is read apart)."""
    return draft_record(
        title=query.title or "",
        official_title=query.official_title or "",
        acronym=query.acronym or "",
        summary=query.summary or "",
        description=query.description or "",
        conditions=query.conditions,
        keywords=query.keywords,
        interventions=query.interventions,
    )


def query_title(query: SimilarQuery) -> DisplayTitle:
    """The title to show for a posted query (:func:`recommender.core.draft_title`)."""
    return draft_title(query_record(query), query.text)


def _payload(
    prepared: PreparedIndex,
    nct_id: str | None,
    title: DisplayTitle,
    query_indices: np.ndarray,
    query_data: np.ndarray,
    positions: list[int],
    scores: list[float],
) -> dict[str, Any]:
    """A :class:`SimilarResponse` as a dict (same keys), for results ranked best first."""
    whys = prepared.explainer_.explain_results(
        query_indices, query_data, np.asarray(positions, dtype=np.int64), WHY_TERMS, DECIMALS
    )
    # float32 scores printed as float64 show noise digits (0.5109974145889282).
    rounded = np.round(np.asarray(scores, dtype=np.float64), DECIMALS).tolist()
    results = [
        _result(prepared.display(position), rank, score, why)
        for rank, (position, score, why) in enumerate(zip(positions, rounded, whys, strict=True), 1)
    ]
    return {
        "nct_id": nct_id,
        "title": title.text,
        "title_made": title.made,
        "results": results,
        "index": prepared.index_info_,
    }


def _result(record: DisplayRecord, rank: int, score: float, why: list[dict]) -> dict[str, Any]:
    title = record.display_title
    return {
        "rank": rank,
        "nct_id": record.nct_id,
        "title": title.text,
        "title_made": title.made,
        "score": score,
        "conditions": record.conditions,
        "interventions": record.intervention_names,
        "phases": record.phases,
        "status": record.overall_status,
        "why": why,
    }
