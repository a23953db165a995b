"""What a server process does around serving: warm up, then follow the served path.

The served path is a link that ``recommender build`` and ``recommender update`` repoint
at each new version. Every ``watch_seconds`` (2 by default) each process compares the
``meta.json`` the link leads to with the one it serves (one ``stat``, on the event
loop); when they differ it loads and verifies the new version in a thread, requests
going on meanwhile, and swaps it in (:meth:`IndexHolder.reload_if_changed`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

from fastapi import FastAPI

from api.server.warmup import warm_up
from api.service import IndexHolder

log = logging.getLogger(__name__)


def serving(
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
    log.info("following %s: checked for a new build every %g s", holder.folder, seconds)
    while True:
        await asyncio.sleep(seconds)
        try:
            if holder.changed_on_disk():  # a stat(): cheap enough for the event loop
                # Loading verifies every file: off the event loop, so requests go on.
                await asyncio.to_thread(holder.reload_if_changed)
        except Exception:  # the watcher must outlive any one failed check
            log.exception("index change check failed")
