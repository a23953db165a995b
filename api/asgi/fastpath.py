"""The commonest requests answered before FastAPI's routing: ``GET /similar/{id}?k=N``
and the page of an id, ``GET /?q={id}&k=N``.

FastAPI spends on each request, resolving its route and parsing and validating every
declared parameter (k and three repeatable filters here), about as long as the answer
itself takes once the index is prepared. :class:`SimilarLookupFastPath` recognises the
plain lookup — a canonical NCT id of this index, no filter, at most ``k`` and nothing
else in the query string — and answers it with the very function the route answers
with, :func:`api.asgi.answers.similar_answer` (payload, ETag, 304, headers). Anything
else (a filter, a lower-case id, a bad ``k``, an unknown trial) goes on to the route,
which validates, documents (OpenAPI) and explains errors as before: the fast path
never answers differently from the route, only sooner.

The page of an id (``q`` a canonical NCT id, at most ``k`` and the form's empty "any"
filters) is rendered by the function the route ``/`` calls, :func:`api.html.page.home_page`,
with the arguments the route would give it.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from api.asgi.answers import similar_answer
from api.schemas import MAX_K
from api.service import answered_on_the_loop, facet_filters
from recommender.core import DEFAULT_RESULTS, NCT_ID_PATTERN
from recommender.index import DamagedIndexError, NotInIndexError, TrialIndex

PREFIX = "/similar/"
ROUTE = "/similar/{nct_id}"
PAGE_PATH = "/"
_K_ONLY = re.compile(rb"k=([1-9][0-9]{0,2})")
# The page's links send q and k; its form sends also the selects, "" for "any".
_PAGE_LOOKUP = re.compile(
    rb"q=(" + NCT_ID_PATTERN.pattern.encode() + rb")"
    rb"(?:&k=([1-9][0-9]{0,2}))?(?:&status=)?(?:&phase=)?(?:&study_type=)?"
)
_NO_FILTERS = facet_filters()
PageRenderer = Callable[[TrialIndex, str, int, dict[str, list[str]]], Response]


def plain_page_lookup(query_string: bytes) -> tuple[str, int] | None:
    """``(nct_id, k)`` of a page query string that is a canonical id, at most ``k``
    (1..MAX_K) and empty filters; else None."""
    match = _PAGE_LOOKUP.fullmatch(query_string)
    if match is None:
        return None
    k = int(match[2]) if match[2] else DEFAULT_RESULTS
    return (match[1].decode(), k) if k <= MAX_K else None


def plain_k(query_string: bytes) -> int | None:
    """``k`` of a query string that is empty or exactly ``k=N`` (1..MAX_K); else None."""
    if not query_string:
        return DEFAULT_RESULTS
    match = _K_ONLY.fullmatch(query_string)
    if match is None:
        return None
    k = int(match[1])
    return k if k <= MAX_K else None


class SimilarLookupFastPath:
    """ASGI middleware: plain ``GET /similar/{id}`` lookups answered directly.

    Parameters
    ----------
    app : ASGI app
        The FastAPI app (everything else goes there).
    serving_index : callable
        Returns the index serving now (``IndexHolder.index``), read once per request.
    cache_control : str
        The ``Cache-Control`` value the route sends.
    route : object, optional
        Put in the scope as ``scope["route"]``, as routing does, so request metrics and
        logs name the route template.
    page : callable, optional
        The page route's renderer, ``page(index, q, k, filters) -> Response``
        (:func:`api.html.page.home_page`); without it, the page is left to its route.
    page_route : object, optional
        ``scope["route"]`` for the page.
    """

    def __init__(
        self,
        app: ASGIApp,
        serving_index: Callable[[], TrialIndex],
        cache_control: str,
        route: object = None,
        page: PageRenderer | None = None,
        page_route: object = None,
    ) -> None:
        self.app = app
        self.serving_index = serving_index
        self.cache_control = cache_control
        self.route = route
        self.page = page
        self.page_route = page_route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            path = scope["path"]
            response, route = None, None
            if path.startswith(PREFIX):
                response, route = self._answer(scope, path[len(PREFIX) :]), self.route
            elif path == PAGE_PATH and self.page is not None:
                response, route = self._page(scope), self.page_route
            if response is not None:
                if route is not None:
                    scope["route"] = route
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _page(self, scope: Scope) -> Response | None:
        lookup = plain_page_lookup(scope["query_string"])
        if lookup is None:
            return None
        index = self.serving_index()
        if not answered_on_the_loop(index, lookup[0], lookup[1], _NO_FILTERS):
            return None
        # Also an id not in the index: the route would render the same 404 page.
        try:
            return self.page(index, *lookup, facet_filters())
        except DamagedIndexError:
            return None  # the route answers it, through the app's error handler

    def _answer(self, scope: Scope, nct_id: str) -> Response | None:
        k = plain_k(scope["query_string"])
        if k is None or not NCT_ID_PATTERN.fullmatch(nct_id):
            return None
        index = self.serving_index()
        if not answered_on_the_loop(index, nct_id, k, _NO_FILTERS):
            return None
        try:
            return similar_answer(index, nct_id, k, _NO_FILTERS, scope, self.cache_control)
        except (NotInIndexError, DamagedIndexError):
            return None  # the route says so, as it says everything else
