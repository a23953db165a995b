"""What the routes do, without HTTP: answer a query from one :class:`TrialIndex`.

Both the JSON API and the HTML page call these, so they can not drift apart. Errors
are the engine's exceptions (``InvalidNctIdError``, ``NotInIndexError``,
``UnknownFacetValueError``) plus :class:`EmptyQueryError`; ``api.app`` maps them to
status codes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from api.schemas import IndexInfo, SimilarQuery, SimilarResponse, SimilarResult, WhyTerm
from recommender.index import Neighbour, TrialIndex
from recommender.records import DRAFT_ID, Intervention, TrialRecord

WHY_TERMS = 3
TITLE_FROM_TEXT = 120


class EmptyQueryError(ValueError):
    """A posted query gave no word that the index knows, so nothing can be ranked."""


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
    position = index.position(nct_id)
    record = index.records[position]
    allowed = index.facets.allowed(filters)
    neighbours = index.similar(record.nct_id, k, allowed=allowed)
    return _response(index, record.nct_id, record.title, index.vectors[position], neighbours)


def similar_to_query(index: TrialIndex, query: SimilarQuery) -> SimilarResponse:
    """The ``query.k`` indexed trials most like a posted text or partial trial.

    Raises
    ------
    EmptyQueryError
        When the query has no words, or none that the index has seen.
    """
    vector = index.vectorize(query_record(query), text=query.text)
    if vector.nnz == 0:
        raise EmptyQueryError(_empty_query_message(query))
    allowed = index.facets.allowed(facet_filters(query.status, query.phase, query.study_type))
    neighbours = index.similar_to_vector(vector, query.k, allowed=allowed)
    return _response(index, None, query_title(query), vector, neighbours)


def query_record(query: SimilarQuery) -> TrialRecord:
    """A :class:`TrialRecord` holding the query's fields (its free text is read apart)."""
    return TrialRecord(
        DRAFT_ID,
        brief_title=query.title or "",
        official_title=query.official_title or "",
        acronym=query.acronym or "",
        brief_summary=query.summary or "",
        detailed_description=query.description or "",
        conditions=tuple(query.conditions),
        keywords=tuple(query.keywords),
        interventions=tuple(Intervention(name=name) for name in query.interventions if name),
    )


def query_title(query: SimilarQuery) -> str:
    """The title to show for a posted query: its title, else the start of its text."""
    if query.title:
        return query.title
    text = " ".join((query.text or query.summary or "").split())
    if len(text) > TITLE_FROM_TEXT:
        return text[: TITLE_FROM_TEXT - 1].rstrip() + "\u2026"
    return text


def _empty_query_message(query: SimilarQuery) -> str:
    fields = query.model_dump(exclude={"k", "status", "phase", "study_type"})
    if not any(fields.values()):
        return "give 'text' or at least one trial field (title, conditions, interventions, ...)"
    return "none of the words of this query occur in the index: nothing to compare it with"


def _response(
    index: TrialIndex,
    nct_id: str | None,
    title: str,
    query: sp.csr_matrix,
    neighbours: list[Neighbour],
) -> SimilarResponse:
    return SimilarResponse(
        nct_id=nct_id,
        title=title,
        results=[_result(index, query, n) for n in neighbours],
        index=IndexInfo(built_at=index.built_at, studies=len(index)),
    )


def _result(index: TrialIndex, query: sp.csr_matrix, neighbour: Neighbour) -> SimilarResult:
    record = index.records[neighbour.position]
    why = index.explain(query, neighbour.position, n_terms=WHY_TERMS)
    return SimilarResult(
        rank=neighbour.rank,
        nct_id=neighbour.nct_id,
        title=record.title,
        score=_rounded(neighbour.score),
        conditions=list(record.conditions),
        interventions=[i.name for i in record.interventions],
        phases=list(record.phases),
        status=record.overall_status,
        why=[WhyTerm(field=w["field"], score=_rounded(w["score"]), terms=w["terms"]) for w in why],
    )


def _rounded(value: float) -> float:
    # float32 scores printed as float64 show noise digits (0.5109974145889282).
    return round(float(np.float32(value)), 6)
