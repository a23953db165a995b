"""The REST service: similar trials for an indexed trial, a text, or a partial trial.

Start it with ``recommender serve --index DIR`` (which sets :data:`INDEX_ENV` and runs
``uvicorn api.app:create_app --factory``), or build an app in code with
:func:`create_app`. See ``docs/api.md`` for the endpoints.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi_offline import FastAPIOffline

from api.asgi import (
    BodySizeLimitMiddleware,
    RequestTelemetry,
    SecurityHeaders,
    ServiceMetrics,
    caching,
)
from api.asgi.fastpath import PAGE_PATH, SimilarLookupFastPath
from api.asgi.fastpath import ROUTE as FAST_ROUTE
from api.asgi.security import DEFAULT_PAGE_FRAME_ANCESTORS
from api.errors import add_error_handlers
from api.html import page
from api.routes import ROUTERS, route_at
from api.server.lifespan import serving
from api.service import IndexHolder
from api.settings import DEFAULT_MAX_BODY_BYTES, Settings


def create_app(
    index_path: str | Path | None = None,
    *,
    reload_token: str | None = None,
    watch_seconds: float | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    embed_frame_ancestors: str | None = None,
    page_frame_ancestors: str | None = None,
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
        Check the served path for a new build this often (one ``stat``) and, when
        there is one, load, verify and swap it in; else ``$RECOMMENDER_WATCH_SECONDS``,
        else every 2 seconds; 0 turns the check off.
    max_body_bytes : int, default 64 KiB
        Larger request bodies get a 413.

    Every setting left as None is read from the environment (:class:`api.settings.Settings`).
    embed_frame_ancestors : str, optional
        Which sites may frame ``/embed/{nct_id}`` (CSP ``frame-ancestors`` sources,
        such as ``"https://registry.example"``); else
        ``$RECOMMENDER_EMBED_FRAME_ANCESTORS``; else ``"*"``, any site.
    page_frame_ancestors : str, optional
        Which sites may frame the other HTML pages (``/``, a trial's page, the API
        docs, error pages): CSP ``frame-ancestors`` sources; else
        ``$RECOMMENDER_PAGE_FRAME_ANCESTORS``; else ``"'self'"``, this site only.
        Every response also says ``X-Content-Type-Options: nosniff``.
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
        before serving (see :mod:`api.server.warmup`); ``/ready`` answers 503 until then.

    Raises
    ------
    DamagedIndexError
        When there is no usable index: the process should not start without one.
    """
    settings = Settings.from_env().replace(
        index_path=Path(index_path) if index_path else None,
        reload_token=reload_token,
        watch_seconds=watch_seconds,
        embed_frame_ancestors=embed_frame_ancestors,
        page_frame_ancestors=page_frame_ancestors,
        cache_seconds=cache_seconds,
        cors_origins=None if cors_origins is None else tuple(cors_origins),
        log_requests=log_requests,
        max_body_bytes=max_body_bytes,
    )
    page_frames = page.frame_ancestors_policy(
        settings.page_frame_ancestors, default=DEFAULT_PAGE_FRAME_ANCESTORS
    )
    holder = IndexHolder(settings.index_path)

    # /docs and /redoc with their scripts served from the package, not from a CDN: they
    # work on a machine without internet access, like the rest of the service.
    app = FastAPIOffline(
        title="Similar clinical trials",
        version="1.0",
        description="Trials like a registered trial, a text, or a partial trial, from a "
        "TF-IDF index of ClinicalTrials.gov records. Errors are JSON with a `detail`.",
        lifespan=serving(holder, settings.watch_seconds, warm),
    )
    app.state.settings = settings
    app.state.holder = holder
    app.state.reload_token = settings.reload_token or None
    app.state.embed_frame_ancestors = page.frame_ancestors_policy(settings.embed_frame_ancestors)
    app.state.cache_control = caching.cache_control(settings.cache_seconds)
    app.state.ready = False  # until the lifespan has warmed the app up
    app.state.warm_up = None
    app.state.metrics = (
        ServiceMetrics(lambda: holder.current, lambda: holder.reloads) if metrics else None
    )
    for router in ROUTERS:
        app.include_router(router)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(  # outside the body limit: a lookup has no body
        SimilarLookupFastPath,
        serving_index=lambda: holder.index,
        cache_control=app.state.cache_control,
        route=route_at(FAST_ROUTE),
        page=page.home_page,
        page_route=route_at(PAGE_PATH),
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", "If-None-Match", "X-Request-ID"],
            expose_headers=["ETag", "X-Request-ID"],
            max_age=600,
        )
    # Outermost: times everything, including the fast path and refusals.
    app.add_middleware(
        RequestTelemetry, metrics=app.state.metrics, log_requests=settings.log_requests
    )
    add_error_handlers(app)
    _around_everything(app, SecurityHeaders, frame_ancestors=page_frames)
    return app


def _around_everything(app: FastAPI, middleware: type, **options: object) -> None:
    """Put ``middleware`` around the whole app, Starlette's error middleware included
    (which ``add_middleware`` does not reach), so that a 500 carries its headers too."""
    build = app.build_middleware_stack
    app.build_middleware_stack = lambda: middleware(build(), **options)  # type: ignore[method-assign]
