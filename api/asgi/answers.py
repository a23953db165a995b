"""Answers that depend only on the index build and the request, as HTTP responses.

Both the route ``GET /similar/{nct_id}`` and the fast path
(:class:`~api.asgi.fastpath.SimilarLookupFastPath`) answer a lookup through
:func:`similar_answer`, so a behaviour added to one cannot be missed by the other.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec
from starlette.responses import Response
from starlette.types import Scope

from api.asgi.caching import json_response, revalidate
from api.service import prepare, similar_to_trial_payload
from recommender.index import TrialIndex

encode_json = msgspec.json.Encoder().encode


def cached_json(
    index: TrialIndex, scope: Scope, cache_control: str, payload: Callable[[], object]
) -> Response:
    """``payload()`` as JSON with the ETag of the build and request and
    ``cache_control``, or a 304 (``payload`` not called) for a client holding it.

    Encoded directly: a payload has its response model's shape by construction (tests
    check it against the schema), so FastAPI's validation is skipped.
    """
    etag, unchanged = revalidate(prepare(index).build_tag_, scope, cache_control)
    if unchanged is not None:
        return unchanged
    return json_response(encode_json(payload()), etag, cache_control)


def similar_answer(
    index: TrialIndex,
    nct_id: str,
    k: int,
    filters: dict[str, list[str]],
    scope: Scope,
    cache_control: str,
) -> Response:
    """The answer to ``GET /similar/{nct_id}``: the ``k`` trials most like ``nct_id``."""
    return cached_json(
        index, scope, cache_control, lambda: similar_to_trial_payload(index, nct_id, k, filters)
    )
