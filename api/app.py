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
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from api import page
from api.middleware import DEFAULT_MAX_BODY_BYTES, BodySizeLimitMiddleware
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
from api.service import EmptyQueryError, facet_filters, similar_to_query, similar_to_trial
from api.state import IndexHolder, current_index
from recommender.facets import UnknownFacetValueError
from recommender.index import DamagedIndexError, NotInIndexError, TrialIndex
from recommender.records import InvalidNctIdError

INDEX_ENV = "RECOMMENDER_INDEX"
ADMIN_TOKEN_ENV = "RECOMMENDER_ADMIN_TOKEN"
WATCH_ENV = "RECOMMENDER_WATCH_SECONDS"
DEFAULT_INDEX = Path("models/index")
NCT_ID_SCHEMA_PATTERN = r"^\s*[Nn][Cc][Tt][0-9]{8}\s*$"

log = logging.getLogger(__name__)

IndexDep = Annotated[TrialIndex, Depends(current_index)]
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
_PAGE_ERRORS = {
    code: {"description": what + ", shown in the page", "content": {"text/html": {}}}
    for code, what in ((404, "Not in this index"), (422, "Malformed id or bad parameter"))
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

    Raises
    ------
    DamagedIndexError
        When there is no usable index: the process should not start without one.
    """
    folder = Path(index_path or os.environ.get(INDEX_ENV) or DEFAULT_INDEX)
    token = reload_token if reload_token is not None else os.environ.get(ADMIN_TOKEN_ENV)
    if watch_seconds is None:
        watch_seconds = _env_seconds(WATCH_ENV)
    holder = IndexHolder(folder)

    app = FastAPI(
        title="Similar clinical trials",
        version="1.0",
        description="Trials like a registered trial, a text, or a partial trial, from a "
        "TF-IDF index of ClinicalTrials.gov records. Errors are JSON with a `detail`.",
        lifespan=_watching(holder, watch_seconds),
    )
    app.state.holder = holder
    app.state.reload_token = token or None
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=max_body_bytes)
    _add_error_handlers(app)
    app.include_router(router)
    return app


def _env_seconds(name: str) -> float:
    value = os.environ.get(name, "").strip()
    try:
        return max(float(value), 0.0) if value else 0.0
    except ValueError:
        raise ValueError(f"${name} must be a number of seconds, got {value!r}") from None


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
    responses=_BAD_INPUT | _NOT_FOUND,
    summary="Trials most like an indexed trial",
)
def similar(
    nct_id: NctIdParam,
    index: IndexDep,
    k: KParam = DEFAULT_K,
    status: StatusParam = None,
    phase: PhaseParam = None,
    study_type: StudyTypeParam = None,
) -> SimilarResponse:
    """The `k` trials most like `nct_id`, never itself; filters apply before ranking."""
    filters = facet_filters(status or (), phase or (), study_type or ())
    return similar_to_trial(index, nct_id, k, filters)


@router.post(
    "/similar",
    response_model=SimilarResponse,
    responses=_BAD_INPUT | _TOO_LARGE,
    summary="Trials most like a text or a partial trial",
)
def similar_posted(query: SimilarQuery, index: IndexDep) -> SimilarResponse:
    """Ranked by exact search over the whole index (a trial not registered yet)."""
    return similar_to_query(index, query)


@router.get(
    "/trials/{nct_id}",
    response_model=TrialOut,
    responses=_BAD_INPUT | _NOT_FOUND,
    summary="The stored record of a trial",
)
def trial(nct_id: NctIdParam, index: IndexDep) -> dict:
    return index.records[index.position(nct_id)].to_dict()


@router.get("/health", response_model=Health, summary="Liveness")
async def health() -> Health:
    return Health()


@router.get("/ready", response_model=Ready, summary="Readiness: the index serving")
async def ready(request: Request) -> Ready:
    holder: IndexHolder = request.app.state.holder
    loaded = holder.current
    return Ready(
        ready=True,
        built_at=loaded.index.built_at,
        studies=len(loaded.index),
        path=str(loaded.path.resolve()),
        bytes_on_disk=loaded.bytes_on_disk,
        loaded_at=loaded.loaded_at,
        last_reload_error=holder.last_error,
    )


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


@router.get("/", response_class=HTMLResponse, responses=_PAGE_ERRORS, summary="The HTML page")
def home(
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
    variables, code = page.context(index, q, page.page_k(k), filters)
    return page.TEMPLATES.TemplateResponse(request, "index.html", variables, status_code=code)
