"""What operators watch: Prometheus metrics, one JSON log line per request, and the
request id that ties a request's log lines to it.

:class:`RequestTelemetry` is plain ASGI middleware, outermost, so it times everything
the app does. Each request gets an id (the client's ``X-Request-ID`` when it is a
plain token, as a proxy in front sends it, else 16 random hex digits), sent back in
the ``X-Request-ID`` header, written in the request's log line and, through
:data:`REQUEST_ID`, in every other line logged while it is answered (uvicorn's
"Exception in ASGI application" too, with ``--log-format json``).

Requests are labelled by *route template* (``/similar/{nct_id}``), not by raw path,
so the number of series stays fixed whatever ids are asked for. The index's facts
(studies, size, build time) are read from the serving index when scraped, so they
follow reloads at no cost per request.

Each worker process keeps its own metrics (``--workers 2`` means two sets; scrape
each, or run one worker per container, as is usual).
"""

from __future__ import annotations

import contextvars
import logging
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime

import msgspec
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.service import LoadedIndex

REQUEST_LOGGER = "api.requests"
REQUEST_ID_HEADER = b"x-request-id"
# The id of the request being answered, for every log line written meanwhile. Set in
# the task that answers it (uvicorn runs each request in a task of its own, which
# copies the context), so it never leaks into another request's lines.
REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
# A client's or proxy's id is kept when it is a plain token; anything else (too long,
# spaces, quotes, control characters) could forge or break a log line: replaced.
_SAFE_ID = re.compile(rb"[A-Za-z0-9._:-]{1,64}")
UNMATCHED = "<unmatched>"
# The client address of warm-up requests (api.server.warmup): neither logged nor counted.
WARM_UP_CLIENT = ("warm-up", 0)
_encode_json = msgspec.json.Encoder().encode
# Seconds: the lookup answers in about a millisecond, a text search in tens.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class ServiceMetrics:
    """The service's Prometheus metrics, in a registry of their own (one per app).

    Parameters
    ----------
    serving : callable
        Returns the :class:`LoadedIndex` serving now; read at each scrape.
    reloads : callable, optional
        Returns the reloads so far by outcome (``{"loaded": 2, "refused": 1}``).
    """

    def __init__(
        self,
        serving: Callable[[], LoadedIndex],
        reloads: Callable[[], Mapping[str, int]] | None = None,
    ) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "recommender_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "recommender_request_duration_seconds",
            "Time from request to the last byte of the response, by route template.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(IndexCollector(serving, reloads))
        self._counters: dict[tuple[str, str, int], Counter] = {}
        self._histograms: dict[tuple[str, str], Histogram] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one request and its duration (label children cached: ``labels()``
        takes a lock and builds a key each time)."""
        counter = self._counters.get((method, route, status))
        if counter is None:
            counter = self._counters[method, route, status] = self.requests.labels(
                method, route, str(status)
            )
        histogram = self._histograms.get((method, route))
        if histogram is None:
            histogram = self._histograms[method, route] = self.latency.labels(method, route)
        counter.inc()
        histogram.observe(seconds)

    def exposition(self) -> bytes:
        """The metrics in Prometheus' text format."""
        return generate_latest(self.registry)


class IndexCollector(Collector):
    """Gauges of the serving index (and its reloads), read when scraped."""

    def __init__(
        self,
        serving: Callable[[], LoadedIndex],
        reloads: Callable[[], Mapping[str, int]] | None = None,
    ) -> None:
        self.serving = serving
        self.reloads = reloads

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        loaded = self.serving()
        index = loaded.index
        info = GaugeMetricFamily(
            "recommender_index_info",
            "The index version serving (always 1): its folder and build time.",
            labels=["version", "path", "built_at"],
        )
        info.add_metric([loaded.version_path.name, str(loaded.version_path), index.built_at], 1)
        yield info
        yield GaugeMetricFamily(
            "recommender_index_studies", "Studies in the serving index.", value=len(index)
        )
        yield GaugeMetricFamily(
            "recommender_index_bytes",
            "Size of the serving index's files on disk.",
            value=loaded.bytes_on_disk,
        )
        built = _timestamp(index.built_at)
        if built is not None:
            yield GaugeMetricFamily(
                "recommender_index_built_timestamp_seconds",
                "When the serving index was built (Unix time).",
                value=built,
            )
        seconds = index.meta.get("seconds")
        if isinstance(seconds, dict) and seconds:
            yield GaugeMetricFamily(
                "recommender_index_build_duration_seconds",
                "How long the serving index took to build (its stages added up).",
                value=sum(float(s) for s in seconds.values()),
            )
        loaded_at = _timestamp(loaded.loaded_at)
        if loaded_at is not None:
            yield GaugeMetricFamily(
                "recommender_index_loaded_timestamp_seconds",
                "When this process loaded the serving index (Unix time).",
                value=loaded_at,
            )
        if self.reloads is not None:
            counts = self.reloads()
            reloads = CounterMetricFamily(
                "recommender_index_reloads",
                "New index versions this process loaded and swapped in, or refused.",
                labels=["outcome"],
            )
            for outcome in ("loaded", "refused"):
                reloads.add_metric([outcome], counts.get(outcome, 0))
            yield reloads


def _timestamp(iso: str) -> float | None:
    try:
        return datetime.fromisoformat(iso).timestamp()
    except (TypeError, ValueError):
        return None


class RequestTelemetry:
    """ASGI middleware: each HTTP request counted, timed and (optionally) logged.

    Parameters
    ----------
    app : ASGI app
    metrics : ServiceMetrics, optional
        Where requests are counted; None counts nothing.
    log_requests : bool, default True
        One JSON line per request on the ``api.requests`` logger, at INFO:
        ``{"method", "route", "path", "status", "duration_ms", "client", "request_id"}``
        (also attached to the log record as ``fields``, for a JSON formatter).
    """

    def __init__(
        self, app: ASGIApp, metrics: ServiceMetrics | None = None, log_requests: bool = True
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.log_requests = log_requests
        self.logger = logging.getLogger(REQUEST_LOGGER)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("client") == WARM_UP_CLIENT:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app fails before answering
        request_id = _request_id(scope)
        REQUEST_ID.set(request_id)  # not reset: the task ends with the request
        id_header = (REQUEST_ID_HEADER, request_id.encode())

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), id_header]}
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            self._record(scope, status, time.perf_counter() - started, request_id)

    def _record(self, scope: Scope, status: int, seconds: float, request_id: str) -> None:
        route = getattr(scope.get("route"), "path", None) or UNMATCHED
        if self.metrics is not None:
            self.metrics.observe(scope["method"], route, status, seconds)
        if self.log_requests and self.logger.isEnabledFor(logging.INFO):
            client = scope.get("client")
            line = {
                "method": scope["method"],
                "route": route,
                "path": scope["path"],
                "status": status,
                "duration_ms": round(seconds * 1000, 3),
                "client": client[0] if client else None,
                "request_id": request_id,
            }
            self.logger.info(_encode_json(line).decode(), extra={"fields": line})


def _request_id(scope: Scope) -> str:
    """The client's ``X-Request-ID`` when it is a plain token, else a new random one."""
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER and _SAFE_ID.fullmatch(value):
            return value.decode()
    return os.urandom(8).hex()
