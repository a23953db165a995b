"""For operators: liveness, readiness, metrics, and the admin reload of the index."""

from __future__ import annotations

import hmac
import os
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import Response

from api.asgi import ServiceMetrics
from api.routes.responses import BAD_INPUT, ERROR
from api.schemas import (
    Health,
    Ready,
    ReloadOut,
)
from api.service import IndexHolder
from api.settings import ADMIN_TOKEN_ENV
from recommender.index import DamagedIndexError

router = APIRouter()
_bearer = HTTPBearer(auto_error=False, description="The admin token (RECOMMENDER_ADMIN_TOKEN).")


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
        path=str(loaded.version_path),
        served_path=str(loaded.path.absolute()),
        up_to_date=holder.up_to_date(),
        watch_seconds=request.app.state.settings.watch_seconds,
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
    responses={404: ERROR | {"description": "Metrics are off"}},
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
        **BAD_INPUT,
        401: ERROR | {"description": "No bearer token"},
        403: ERROR | {"description": "Wrong token"},
        404: ERROR | {"description": "Reload is off: no admin token configured"},
        409: ERROR | {"description": "New index refused (damaged); the old one serves"},
    },
    summary="Load the index folder again and swap it in",
)
def reload_index(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> ReloadOut:
    """Loads and verifies the new index fully, then swaps one reference: requests in
    flight finish on the old index. Reaches one worker process only, the one named in
    the answer (`worker_pid`, `reached`)."""
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
        worker_pid=os.getpid(),
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
