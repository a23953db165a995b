"""Warm-up: one request of each kind, sent to the app in-process before it serves.

The first free-text query after a start took 2.7 s: numba loads (or compiles) its
kernels, the vectoriser builds its tables, Jinja compiles the page, pages of the index
are read from disk. :func:`warm_up` pays all that once, at startup (the app's lifespan,
before the server accepts connections), by sending an id query (and one for a thin
trial), a free-text query and a page request through the whole app, so no user pays
it; ``/ready`` says ready only after it ran.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import httpx
from starlette.types import ASGIApp

from api.asgi.telemetry import WARM_UP_CLIENT
from recommender.index import TrialIndex

log = logging.getLogger(__name__)


@dataclass
class WarmUpReport:
    """What the warm-up did: per request, its status and how long it took."""

    steps: dict[str, dict[str, float | int]] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(step["status"] == 200 for step in self.steps.values())


def warm_up_requests(index: TrialIndex) -> dict[str, tuple[str, str, dict | None]]:
    """The requests sent: ``{name: (method, url, JSON body or None)}`` (none for an
    empty index)."""
    if len(index) == 0:
        return {}
    nct_id = str(index.ids[0])
    text = index.records[0].title or "trial"
    requests = {
        "id query": ("GET", f"/similar/{nct_id}", None),
        "free-text query": ("POST", "/similar", {"text": text}),
        "page": ("GET", f"/?q={nct_id}", None),
    }
    # A thin trial is read as a query and searched: neither is on a rich trial's path.
    thin = next((p for p in range(min(len(index), 1000)) if index.asked.reads_prose(p)), None)
    if thin is not None:
        requests["thin trial's id query"] = ("GET", f"/similar/{index.ids[thin]}", None)
    return requests


async def warm_up(app: ASGIApp, index: TrialIndex) -> WarmUpReport:
    """Send :func:`warm_up_requests` through ``app``; a failed one is logged, not raised
    (a server that answers slowly once is better than none)."""
    report = WarmUpReport()
    started = time.perf_counter()
    transport = httpx.ASGITransport(app=app, client=WARM_UP_CLIENT)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://warm-up") as client:
        for name, (method, url, body) in warm_up_requests(index).items():
            began = time.perf_counter()
            try:
                status = (await client.request(method, url, json=body)).status_code
            except Exception:  # the warm-up must not stop the server starting
                log.exception("warm-up %s failed", name)
                status = 0
            report.steps[name] = {"status": status, "seconds": time.perf_counter() - began}
    report.seconds = time.perf_counter() - started
    steps = ", ".join(f"{n} {s['seconds'] * 1000:.0f} ms" for n, s in report.steps.items())
    log.info("warm-up done in %.2f s (%s)", report.seconds, steps or "empty index")
    if not report.ok:
        log.warning("warm-up had failures: %s", report.steps)
    return report
