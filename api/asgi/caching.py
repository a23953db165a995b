"""HTTP caching of answers that only change with the index: ETag, Cache-Control, 304.

An answer of ``GET /similar/{id}`` or ``GET /trials/{id}`` depends on nothing but the
request's path and query string and the index build serving it. Its ETag is made of
both: the build's tag (:attr:`PreparedIndex.build_tag_`) and a hash of the path and
query, so it is known before any work is done, a client that already holds the
answer gets a bodiless 304 at once, and a new build changes every tag.
"""

from __future__ import annotations

import hashlib

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import Scope


def entity_tag(build_tag: str, scope: Scope) -> str:
    """The strong ETag of the answer to the request ``scope`` from the build ``build_tag``."""
    target = scope["path"].encode() + b"?" + scope["query_string"]
    return f'"{build_tag}-{hashlib.blake2b(target, digest_size=8).hexdigest()}"'


def matches(if_none_match: str | None, etag: str) -> bool:
    """Whether an ``If-None-Match`` header names ``etag`` (weakly, as RFC 9110 says)."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate.removeprefix("W/") == etag:
            return True
    return False


def revalidate(build_tag: str, scope: Scope, control: str) -> tuple[str, Response | None]:
    """The ETag of the answer to ``scope``, and a 304 when ``If-None-Match`` names it
    (the client holds that answer already), else None."""
    etag = entity_tag(build_tag, scope)
    if matches(Headers(scope=scope).get("if-none-match"), etag):
        return etag, not_modified(etag, control)
    return etag, None


def cache_control(seconds: int) -> str:
    """The Cache-Control value: shared caches may keep an answer ``seconds`` long."""
    return f"public, max-age={seconds}" if seconds > 0 else "no-cache"


def not_modified(etag: str, control: str) -> Response:
    """The 304 for a client that holds the current answer."""
    return Response(status_code=304, headers={"etag": etag, "cache-control": control})


def json_response(body: bytes, etag: str, control: str) -> Response:
    """A 200 with an already encoded JSON body and its caching headers."""
    return Response(
        body,
        media_type="application/json",
        headers={"etag": etag, "cache-control": control},
    )
