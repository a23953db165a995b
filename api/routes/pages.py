"""The pages for people: the search page, a trial's page, the embeddable box and the
stylesheet they share (rendered by :mod:`api.html.page`)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from api.asgi import caching
from api.deps import (
    IndexDep,
    NctIdParam,
    PageFilter,
    PhaseParam,
    StatusParam,
    StudyTypeParam,
)
from api.html import page
from api.routes.responses import EMBED_ERRORS, NOT_MODIFIED, PAGE_ERRORS
from api.schemas import MAX_K
from api.service import (
    answered_on_the_loop,
    facet_filters,
    prepare,
)
from recommender.core import DEFAULT_RESULTS, NCT_ID_INPUT_PATTERN
from recommender.index import TrialIndex

STYLESHEET_CACHE = "public, max-age=31536000, immutable"

_ID_QUERY = re.compile(NCT_ID_INPUT_PATTERN)

router = APIRouter()


@router.get("/static/site.css", include_in_schema=False)
async def stylesheet(request: Request, v: str = "") -> Response:
    """The pages' stylesheet: kept a year (immutable) when asked for by its current
    version (``?v=``, as the pages link it), else cached as the other answers are."""
    css, version = page.stylesheet()
    etag = f'"{version}"'
    control = STYLESHEET_CACHE if v == version else request.app.state.cache_control
    if caching.matches(request.headers.get("if-none-match"), etag):
        return caching.not_modified(etag, control)
    headers = {"etag": etag, "cache-control": control}
    return Response(css, media_type="text/css", headers=headers)


@router.get("/", response_class=HTMLResponse, responses=PAGE_ERRORS, summary="The HTML page")
async def home(
    request: Request,
    index: IndexDep,
    q: Annotated[str, Query(description="NCT id or text.")] = "",
    k: Annotated[str, Query(description="Number of results, 1 to 100.")] = "",
    status: PageFilter = None,
    phase: PageFilter = None,
    study_type: PageFilter = None,
) -> HTMLResponse:
    """A box for an NCT id or a text, and the related trials, each linking onwards.

    Lenient where the JSON API is strict: whatever is typed in the address bar, the
    answer is this page (a bad ``k`` falls back to the default).
    """
    filters = page.form_filters(status, phase, study_type)
    results = page.page_k(k)
    if _ID_QUERY.fullmatch(q) and answered_on_the_loop(index, q, results, filters):
        # A lookup, on the event loop as for the JSON route; a text is searched in a thread.
        return page.home_page(index, q, results, filters)
    return await run_in_threadpool(page.home_page, index, q, results, filters)


@router.get(
    "/trials/{nct_id}/page",
    response_class=HTMLResponse,
    responses=PAGE_ERRORS | NOT_MODIFIED,
    summary="A trial's record as a page for people",
)
def trial_page(request: Request, nct_id: NctIdParam, index: IndexDep) -> Response:
    """Title, status, phases, conditions, interventions and summary, with links to the
    registry's page, to the related trials, and to the JSON record (`/trials/{nct_id}`).

    Sent with an `ETag` and `Cache-Control`, like `GET /trials/{nct_id}`."""
    return _cached_page(request, index, lambda: page.trial_page(request, index, nct_id))


@router.get(
    "/embed/{nct_id}",
    response_class=HTMLResponse,
    responses=EMBED_ERRORS | NOT_MODIFIED,
    summary="A 'Related clinical trials' box for another site's iframe",
)
def embed(
    request: Request,
    nct_id: NctIdParam,
    index: IndexDep,
    k: Annotated[int, Query(ge=1, le=MAX_K, description="Number of trials.")] = DEFAULT_RESULTS,
    status: StatusParam = None,
    phase: PhaseParam = None,
    study_type: StudyTypeParam = None,
) -> Response:
    """Self-contained HTML (inline style, no script), each trial linking to its
    ClinicalTrials.gov page in a new tab; framable by the configured ancestors.

    Sent with an `ETag` and `Cache-Control`, like `GET /similar/{nct_id}`."""
    filters = facet_filters(status or (), phase or (), study_type or ())
    frame_ancestors = request.app.state.embed_frame_ancestors
    return _cached_page(
        request,
        index,
        lambda: page.embed(request, index, nct_id, k, filters, frame_ancestors),
        page.embed_headers(frame_ancestors),
    )


def _cached_page(
    request: Request,
    index: TrialIndex,
    render: Callable[[], Response],
    headers: dict[str, str] | None = None,
) -> Response:
    """``render()``'s page with the ETag and Cache-Control of the JSON routes (a 200
    only: an error page is not cached), or a 304 for a client holding it already.

    ``headers`` are those the 200 carries that a cache should refresh from a 304 too
    (the box's Content-Security-Policy, which follows the server's configuration).
    """
    control = request.app.state.cache_control
    etag, unchanged = caching.revalidate(prepare(index).build_tag_, request.scope, control)
    if unchanged is not None:
        unchanged.headers.update(headers or {})
        return unchanged
    response = render()
    if response.status_code == 200:
        response.headers.update({"etag": etag, "cache-control": control})
    return response
