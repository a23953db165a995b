"""The JSON API: trials like an indexed trial, like a posted text or partial trial,
and a trial's stored record."""

from __future__ import annotations

import functools

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from api.asgi.answers import cached_json, encode_json, similar_answer
from api.deps import IndexDep, KParam, NctIdParam, PhaseParam, StatusParam, StudyTypeParam
from api.routes.responses import BAD_INPUT, NOT_FOUND, NOT_MODIFIED, TOO_LARGE
from api.schemas import SimilarQuery, SimilarResponse, TrialOut
from api.service import (
    answered_on_the_loop,
    facet_filters,
    similar_to_query_payload,
)
from recommender.core import DEFAULT_RESULTS

router = APIRouter()


@router.get(
    "/similar/{nct_id}",
    response_model=SimilarResponse,
    responses=BAD_INPUT | NOT_FOUND | NOT_MODIFIED,
    summary="Trials most like an indexed trial",
)
async def similar(
    request: Request,
    nct_id: NctIdParam,
    index: IndexDep,
    k: KParam = DEFAULT_RESULTS,
    status: StatusParam = None,
    phase: PhaseParam = None,
    study_type: StudyTypeParam = None,
) -> Response:
    """The `k` trials most like `nct_id`, never itself; filters apply before ranking.

    Sent with an `ETag` (of the index build and the request) and `Cache-Control`;
    `If-None-Match` with the current tag gets a 304.
    """
    filters = facet_filters(status or (), phase or (), study_type or ())
    control = request.app.state.cache_control
    answer = functools.partial(similar_answer, index, nct_id, k, filters, request.scope, control)
    if answered_on_the_loop(index, nct_id, k, filters):
        return answer()  # a lookup: quicker on the event loop than the hop to a thread
    return await run_in_threadpool(answer)  # a search or a reading: off the event loop


@router.post(
    "/similar",
    response_model=SimilarResponse,
    responses=BAD_INPUT | TOO_LARGE,
    summary="Trials most like a text or a partial trial",
)
def similar_posted(query: SimilarQuery, index: IndexDep) -> Response:
    """Ranked by exact search over the whole index (a trial not registered yet)."""
    payload = similar_to_query_payload(index, query)
    return Response(encode_json(payload), media_type="application/json")


@router.get(
    "/trials/{nct_id}",
    response_model=TrialOut,
    responses=BAD_INPUT | NOT_FOUND | NOT_MODIFIED,
    summary="The stored record of a trial",
)
async def trial(request: Request, nct_id: NctIdParam, index: IndexDep) -> Response:
    """Sent with an `ETag` and `Cache-Control`, like `GET /similar/{nct_id}`."""
    control = request.app.state.cache_control
    return cached_json(index, request.scope, control, lambda: index.records[index.position(nct_id)])
