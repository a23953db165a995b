"""A request body size limit, as plain ASGI middleware.

Checked twice: the declared ``Content-Length`` (refused before a byte of the body is
read), and the bytes actually received (a chunked upload declares no length, and a
client may lie). Either way the answer is a 413 with a JSON ``detail``.
"""

from __future__ import annotations

import json

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.settings import DEFAULT_MAX_BODY_BYTES


class BodyTooLargeError(HTTPException):
    """Raised from ``receive`` once the body passes the limit.

    An ``HTTPException`` on purpose: FastAPI re-raises those from body parsing (any
    other exception there becomes a 400), and its handler turns it into the 413.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=too_large_detail(limit))


def too_large_detail(limit: int) -> str:
    return f"request body is larger than the limit of {limit:,} bytes"


class BodySizeLimitMiddleware:
    """Refuse HTTP requests whose body is larger than ``max_bytes`` with a 413.

    Parameters
    ----------
    app : ASGI app
    max_bytes : int
        Largest accepted body, in bytes.
    """

    def __init__(self, app: ASGIApp, max_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(send)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLargeError(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLargeError:
            # Reached only if nothing inside handled it (a route reading the raw
            # stream); a response already under way can not be replaced.
            if started:
                raise
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps({"detail": too_large_detail(self.max_bytes)}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server rejects a malformed length itself
    return None
