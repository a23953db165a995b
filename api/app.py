"""The REST service: similar trials for an indexed trial, a text, or a partial trial.

Start it with ``recommender serve --index DIR`` (which sets :data:`INDEX_ENV` and runs
``uvicorn api.app:create_app --factory``), or build an app in code with
:func:`create_app`. See ``docs/api.md`` for the endpoints.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Annotated

import msgspec
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi_offline import FastAPIOffline
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from api import caching, page
from api.fastpath import PAGE_PATH, SimilarLookupFastPath
from api.fastpath import ROUTE as FAST_ROUTE
from api.middleware import DEFAULT_MAX_BODY_BYTES, BodySizeLimitMiddleware
from api.prepared import prepare
from api.schemas import (
    DEFAULT_K,
    MAX_K,
    ErrorOut,
    Health,
    Phase,
    Ready,
    ReloadOut,
    SimilarQuery,
    SimilarResponse,
    Status,
    StudyType,
    TrialOut,
)
from api.service import (
    EmptyQueryError,
    answered_from_stored_lists,
    facet_filters,
    similar_to_query_payload,
    similar_to_trial_payload,
)
from api.state import IndexHolder, current_index
from api.telemetry import RequestTelemetry, ServiceMetrics
from api.warmup import warm_up
from recommender.facets import UnknownFacetValueError
from recommender.index import DamagedIndexError, NotInIndexError, TrialIndex
from recommender.records import InvalidNctIdError

INDEX_ENV = "RECOMMENDER_INDEX"
ADMIN_TOKEN_ENV = "RECOMMENDER_ADMIN_TOKEN"
WATCH_ENV = "RECOMMENDER_WATCH_SECONDS"
FRAME_ANCESTORS_ENV = "RECOMMENDER_EMBED_FRAME_ANCESTORS"
CORS_ENV = "RECOMMENDER_CORS_ORIGINS"
REQUEST_LOG_ENV = "RECOMMENDER_REQUEST_LOG"
DEFAULT_INDEX = Path("models/index")
_OFF = {"0", "off", "false", "no"}
STYLESHEET_CACHE = "public, max-age=31536000, immutable"
NCT_ID_SCHEMA_PATTERN = r"^\s*[Nn][Cc][Tt][0-9]{8}\s*$"
_ID_QUERY = re.compile(NCT_ID_SCHEMA_PATTERN)

log = logging.getLogger(__name__)
_encode_json = msgspec.json.Encoder().encode


async def serving_index(request: Request) -> TrialIndex:
    """:func:`current_index` as a coroutine: FastAPI runs a plain-function dependency
    in its thread pool, a thread hop per request for one attribute read."""
    return current_index(request)


IndexDep = Annotated[TrialIndex, Depends(serving_index)]
NctIdParam = Annotated[
    str,
    PathParam(
        description="ClinicalTrials.gov id: 'NCT' and 8 digits (case and spaces forgiven).",
        examples=["NCT00000001"],
        # Documented, not enforced by FastAPI: the engine's check says more clearly
        # what is wrong with an id than "String should match pattern".
        json_schema_extra={"pattern": NCT_ID_SCHEMA_PATTERN},
    ),
]
KParam = Annotated[int, Query(ge=1, le=MAX_K, description="Number of results.")]
StatusParam = Annotated[list[Status] | None, Query(description="Repeatable.")]
PhaseParam = Annotated[list[Phase] | None, Query(description="Repeatable; any phase matches.")]
StudyTypeParam = Annotated[list[StudyType] | None, Query(description="Repeatable.")]
# The page's selects send "" for "any", so its filters are checked by the engine instead.
PageFilter = Annotated[list[str] | None, Query(description="Repeatable; empty means any.")]

_ERROR = {"model": ErrorOut}
_BAD_INPUT = {422: _ERROR | {"description": "Malformed id or bad parameter"}}
_NOT_FOUND = {404: _ERROR | {"description": "Not in this index"}}
_TOO_LARGE = {413: _ERROR | {"description": "Body larger than the limit"}}
_NOT_MODIFIED = {304: {"description": "Not modified: `If-None-Match` names the current ETag"}}
_PAGE_ERRORS = {
    code: {"description": what + ", shown in the page", "content": {"text/html": {}}}
    for code, what in ((404, "Not in this index"), (422, "Malformed id or bad parameter"))
}
_EMBED_ERRORS = {
    404: _PAGE_ERRORS[404],
    422: {
        "description": "Malformed or unknown id or filter value: shown in the box; a "
        "parameter of the wrong type or range: JSON, as in the API",
        "content": {"text/html": {}, "application/json": {"schema": ErrorOut.model_json_schema()}},
    },
}
_bearer = HTTPBearer(auto_error=False, description="The admin token (RECOMMENDER_ADMIN_TOKEN).")

router = APIRouter()


# -- the app -------------------------------------------------------------------------


def create_app(
    index_path: str | Path | None = None,
    *,
    reload_token: str | None = None,
    watch_seconds: float | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    embed_frame_ancestors: str | None = None,
    cache_seconds: int | None = None,
    cors_origins: Sequence[str] | None = None,
    log_requests: bool | None = None,
    metrics: bool = True,
    warm: bool = True,
) -> FastAPI:
    """Build the service around the index in ``index_path``, loaded (and verified) now.

    Parameters
    ----------
    index_path : path, optional
        Index folder; else ``$RECOMMENDER_INDEX``, else ``models/index``.
    reload_token : str, optional
        Enables ``POST /admin/reload`` for this bearer token; else
        ``$RECOMMENDER_ADMIN_TOKEN``; when neither is set, reload is off (404).
    watch_seconds : float, optional
        Check the index folder for a new build this often and swap it in; else
        ``$RECOMMENDER_WATCH_SECONDS``; 0 (the default) is off.
    max_body_bytes : int, default 64 KiB
        Larger request bodies get a 413.
    embed_frame_ancestors : str, optional
        Which sites may frame ``/embed/{nct_id}`` (CSP ``frame-ancestors`` sources,
        such as ``"https://registry.example"``); else
        ``$RECOMMENDER_EMBED_FRAME_ANCESTORS``; else ``"*"``, any site.
    cache_seconds : int, optional
        ``Cache-Control: max-age`` of the answers of ``GET /similar/{id}``,
        ``GET /trials/{id}``, ``GET /trials/{id}/page`` and ``GET /embed/{id}``; else
        ``$RECOMMENDER_CACHE_SECONDS``, else 300; 0 sends ``no-cache`` (clients
        revalidate with their ETag every time).
    cors_origins : sequence of str, optional
        Origins whose pages may call the API from a browser (``"*"`` for any); else
        ``$RECOMMENDER_CORS_ORIGINS`` (comma-separated); none (the default) sends no
        CORS headers.
    log_requests : bool, optional
        One JSON line per request on the ``api.requests`` logger; else
        ``$RECOMMENDER_REQUEST_LOG`` (``0``, ``off`` or ``false`` turn it off); on by
        default.
    metrics : bool, default True
        Count requests and serve them at ``GET /metrics`` (Prometheus text format).
    warm : bool, default True
        At startup (the app's lifespan), send one request of each kind through the app
        before serving (see :mod:`api.warmup`); ``/ready`` answers 503 until then.

    Raises
    ------
    DamagedIndexError
        When there is no usable index: the process should not start without one.
    """
    folder = Path(index_path or os.environ.get(INDEX_ENV) or DEFAULT_INDEX)
    token = reload_token if reload_token is not None else os.environ.get(ADMIN_TOKEN_ENV)
    if watch_seconds is None:
        watch_seconds = _env_seconds(WATCH_ENV)
    if embed_frame_ancestors is None:
        embed_frame_ancestors = os.environ.get(FRAME_ANCESTORS_ENV)
    if cache_seconds is None:
        cache_seconds = caching.cache_seconds_from_env()
    if cors_origins is None:
        cors_origins = [o.strip() for o in os.environ.get(CORS_ENV, "").split(",") if o.strip()]
    if log_requests is None:
        log_requests = os.environ.get(REQUEST_LOG_ENV, "").strip().lower() not in _OFF
    holder = IndexHolder(folder)

    # /docs and /redoc with their scripts served from the package, not from a CDN: they
    # work on a machine without internet access, like the rest of the service.
    app = FastAPIOffline(
        title="Similar clinical trials",
        version="1.0",
        description="Trials like a registered trial, a text, or a partial trial, from a "
        "TF-IDF index of ClinicalTrials.gov records. Errors are JSON with a `detail`.",
        lifespan=_serving(holder, watch_seconds, warm),
    )
    app.state.holder = holder
    app.state.reload_token = token or None
    app.state.embed_frame_ancestors = page.frame_ancestors_policy(embed_frame_ancestors)
    app.state.cache_control = caching.cache_control(cache_seconds)
    app.state.ready = False  # until the lifespan has warmed the app up
    app.state.warm_up = None
    app.state.metrics = ServiceMetrics(lambda: holder.current) if metrics else None
    app.include_router(router)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=max_body_bytes)
    app.add_middleware(  # outside the body limit: a lookup has no body
        SimilarLookupFastPath,
        serving_index=lambda: holder.index,
        cache_control=app.state.cache_control,
        encode=_encode_json,
        route=_route(FAST_ROUTE),
        page=page.home_page,
        page_route=_route(PAGE_PATH),
    )
    if cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", "If-None-Match"],
            expose_headers=["ETag"],
            max_age=600,
        )
    # Outermost: times everything, including the fast path and refusals.
    app.add_middleware(RequestTelemetry, metrics=app.state.metrics, log_requests=log_requests)
    _add_error_handlers(app)
    return app


def _route(path: str) -> object:
    return next(r for r in router.routes if getattr(r, "path", None) == path)


def _env_seconds(name: str) -> float:
    value = os.environ.get(name, "").strip()
    try:
        return max(float(value), 0.0) if value else 0.0
    except ValueError:
        raise ValueError(f"${name} must be a number of seconds, got {value!r}") from None


def _serving(
    holder: IndexHolder, watch_seconds: float, warm: bool
) -> Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]:
    """Lifespan: warm up (when ``warm``), say ready, then watch the index folder."""
    watching = _watching(holder, watch_seconds)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if warm:
            app.state.warm_up = await warm_up(app, holder.index)
        app.state.ready = True
        async with watching(app):
            yield

    return lifespan


def _watching(
    holder: IndexHolder, seconds: float
) -> Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]:
    """Lifespan that polls the index folder for a new build, when ``seconds`` > 0."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(_watch(holder, seconds)) if seconds > 0 else None
        yield
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return lifespan


async def _watch(holder: IndexHolder, seconds: float) -> None:
    while True:
        await asyncio.sleep(seconds)
        try:
            # Loading verifies every file: off the event loop, so requests go on.
            await asyncio.to_thread(holder.reload_if_changed)
        except Exception:  # the watcher must outlive any one failed check
            log.exception("index change check failed")


# -- errors --------------------------------------------------------------------------


def _add_error_handlers(app: FastAPI) -> None:
    def status(code: int) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
        async def handler(request: Request, exc: Exception) -> JSONResponse:
            return JSONResponse({"detail": str(exc)}, status_code=code)

        return handler

    app.add_exception_handler(InvalidNctIdError, status(422))
    app.add_exception_handler(UnknownFacetValueError, status(422))
    app.add_exception_handler(EmptyQueryError, status(422))
    app.add_exception_handler(NotInIndexError, status(404))
    # A record that fails to decode while serving: the index on disk is damaged.
    app.add_exception_handler(DamagedIndexError, status(503))
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's list of failed checks, under a one-sentence ``detail``."""
    errors = [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in exc.errors()
    ]
    sentences = [f"{_where(e['loc'])}: {e['msg']}" for e in errors[:5]]
    detail = "; ".join(sentences) or "invalid request"
    if _whole_body_refused(errors) and "json" not in request.headers.get("content-type", ""):
        # FastAPI reads a body as JSON only when it says so (`curl -d` sends a form).
        detail = "the body must be a JSON object sent with 'Content-Type: application/json'"
    return JSONResponse({"detail": detail, "errors": jsonable_encoder(errors)}, status_code=422)


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    """FastAPI's own errors, except that a body it can not decode is a 422, like bad JSON."""
    if exc.status_code == 400:  # FastAPI's "There was an error parsing the body"
        detail = "the request body could not be read as JSON text in UTF-8"
        return JSONResponse({"detail": detail}, status_code=422)
    return await http_exception_handler(request, exc)


def _whole_body_refused(errors: list[dict]) -> bool:
    return any(e["loc"] == ["body"] for e in errors)


def _where(loc: list) -> str:
    if not loc:
        return "request"
    place, *names = loc
    named = ".".join(str(n) for n in names)
    if place == "body":
        return f"body field {named}" if named else "body"
    return f"{place} parameter {named}" if named else str(place)


# -- routes --------------------------------------------------------------------------


@router.get(
    "/similar/{nct_id}",
    response_model=SimilarResponse,
    responses=_BAD_INPUT | _NOT_FOUND | _NOT_MODIFIED,
    summary="Trials most like an indexed trial",
)
async def similar(
    request: Request,
    nct_id: NctIdParam,
    index: IndexDep,
    k: KParam = DEFAULT_K,
    status: StatusParam = None,
    phase: PhaseParam = None,
    study_type: StudyTypeParam = None,
) -> Response:
    """The `k` trials most like `nct_id`, never itself; filters apply before ranking.

    Sent with an `ETag` (of the index build and the request) and `Cache-Control`;
    `If-None-Match` with the current tag gets a 304.
    """
    control = request.app.state.cache_control
    etag, unchanged = caching.revalidate(prepare(index).build_tag_, request.scope, control)
    if unchanged is not None:
        return unchanged
    filters = facet_filters(status or (), phase or (), study_type or ())
    if answered_from_stored_lists(index, k, filters):
        # A lookup: quicker on the event loop than the hop to a worker thread.
        payload = similar_to_trial_payload(index, nct_id, k, filters)
    else:  # an exact search: off the event loop
        payload = await run_in_threadpool(similar_to_trial_payload, index, nct_id, k, filters)
    # Encoded directly: the payload has the response model's shape by construction
    # (tests check it against the schema), so FastAPI's validation is skipped.
    return caching.json_response(_encode_json(payload), etag, control)


@router.post(
    "/similar",
    response_model=SimilarResponse,
    responses=_BAD_INPUT | _TOO_LARGE,
    summary="Trials most like a text or a partial trial",
)
def similar_posted(query: SimilarQuery, index: IndexDep) -> Response:
    """Ranked by exact search over the whole index (a trial not registered yet)."""
    payload = similar_to_query_payload(index, query)
    return Response(_encode_json(payload), media_type="application/json")


@router.get(
    "/trials/{nct_id}",
    response_model=TrialOut,
    responses=_BAD_INPUT | _NOT_FOUND | _NOT_MODIFIED,
    summary="The stored record of a trial",
)
async def trial(request: Request, nct_id: NctIdParam, index: IndexDep) -> Response:
    """Sent with an `ETag` and `Cache-Control`, like `GET /similar/{nct_id}`."""
    control = request.app.state.cache_control
    etag, unchanged = caching.revalidate(prepare(index).build_tag_, request.scope, control)
    if unchanged is not None:
        return unchanged
    record = index.records[index.position(nct_id)]
    return caching.json_response(_encode_json(record), etag, control)


@router.get("/health", response_model=Health, summary="Liveness")
async def health() -> Health:
    return Health()


@router.get(
    "/ready",
    response_model=Ready,
    responses={503: {"model": Ready, "description": "Not ready yet: warming up"}},
    summary="Readiness: the index serving, warmed up",
)
async def ready(request: Request) -> Ready | JSONResponse:
    holder: IndexHolder = request.app.state.holder
    loaded = holder.current
    facts = Ready(
        ready=request.app.state.ready,
        built_at=loaded.index.built_at,
        studies=len(loaded.index),
        path=str(loaded.path.resolve()),
        bytes_on_disk=loaded.bytes_on_disk,
        loaded_at=loaded.loaded_at,
        last_reload_error=holder.last_error,
    )
    if not facts.ready:
        return JSONResponse(facts.model_dump(), status_code=503)
    return facts


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={404: _ERROR | {"description": "Metrics are off"}},
    summary="Prometheus metrics",
)
async def metrics(request: Request) -> Response:
    """Requests and latency by route template, and the serving index's size and build."""
    service_metrics: ServiceMetrics | None = request.app.state.metrics
    if service_metrics is None:
        raise HTTPException(404, "metrics are off in this server")
    return Response(service_metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


@router.post(
    "/admin/reload",
    response_model=ReloadOut,
    responses={
        **_BAD_INPUT,
        401: _ERROR | {"description": "No bearer token"},
        403: _ERROR | {"description": "Wrong token"},
        404: _ERROR | {"description": "Reload is off: no admin token configured"},
        409: _ERROR | {"description": "New index refused (damaged); the old one serves"},
    },
    summary="Load the index folder again and swap it in",
)
def reload_index(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> ReloadOut:
    """Loads and verifies the new index fully, then swaps one reference: requests in
    flight finish on the old index. Reaches one worker process only."""
    _check_admin(request.app.state.reload_token, credentials)
    holder: IndexHolder = request.app.state.holder
    serving = holder.current.index.built_at
    try:
        previous, fresh = holder.reload()
    except DamagedIndexError as exc:
        raise HTTPException(
            409, f"new index refused, still serving the one built at {serving}: {exc}"
        ) from None
    return ReloadOut(
        reloaded=True,
        built_at=fresh.index.built_at,
        studies=len(fresh.index),
        previous_built_at=previous.index.built_at,
    )


def _check_admin(token: str | None, credentials: HTTPAuthorizationCredentials | None) -> None:
    if token is None:
        raise HTTPException(404, f"admin reload is off: set {ADMIN_TOKEN_ENV} to enable it")
    if credentials is None:
        raise HTTPException(
            401, "an 'Authorization: Bearer <token>' header is required",
            headers={"WWW-Authenticate": "Bearer"},
        )  # fmt: skip
    # Constant-time comparison: response timing must not reveal the token's prefix.
    if not hmac.compare_digest(credentials.credentials.encode(), token.encode()):
        raise HTTPException(403, "wrong admin token")


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


@router.get("/", response_class=HTMLResponse, responses=_PAGE_ERRORS, summary="The HTML page")
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
    if _ID_QUERY.fullmatch(q) and answered_from_stored_lists(index, results, filters):
        # A lookup, on the event loop as for the JSON route; a text is searched in a thread.
        return page.home_page(index, q, results, filters)
    return await run_in_threadpool(page.home_page, index, q, results, filters)


@router.get(
    "/trials/{nct_id}/page",
    response_class=HTMLResponse,
    responses=_PAGE_ERRORS | _NOT_MODIFIED,
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
    responses=_EMBED_ERRORS | _NOT_MODIFIED,
    summary="A 'Related clinical trials' box for another site's iframe",
)
def embed(
    request: Request,
    nct_id: NctIdParam,
    index: IndexDep,
    k: Annotated[int, Query(ge=1, le=MAX_K, description="Number of trials.")] = DEFAULT_K,
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
