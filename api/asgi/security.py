"""Headers every answer carries for a browser's safety (:class:`SecurityHeaders`).

* ``X-Content-Type-Options: nosniff`` on every response: a browser takes each as the
  type it declares, never guessing HTML or script from JSON or text it was handed;
* on every HTML page without a ``Content-Security-Policy`` of its own, a frame
  policy: ``frame-ancestors`` (``'self'`` by default, so no other site can put the
  pages in a frame and trick a click through them) and, where it can say the same,
  the older ``X-Frame-Options``. The embeddable box (``/embed``) sends its own policy
  and keeps it.

The server's own refusals, written before the app sees a request (408, 414, 431,
uvicorn's 503), carry the same headers (:mod:`api.server.protocol`).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

NOSNIFF = (b"x-content-type-options", b"nosniff")
DEFAULT_PAGE_FRAME_ANCESTORS = "'self'"
# What X-Frame-Options can say of a frame-ancestors value; nothing for any other.
_LEGACY_FRAME_OPTIONS = {"'self'": b"SAMEORIGIN", "'none'": b"DENY"}


def frame_headers(ancestors: str) -> list[tuple[bytes, bytes]]:
    """The headers that let only ``ancestors`` (CSP sources) frame a page."""
    headers = [(b"content-security-policy", f"frame-ancestors {ancestors}".encode("ascii"))]
    legacy = _LEGACY_FRAME_OPTIONS.get(ancestors)
    if legacy is not None:
        headers.append((b"x-frame-options", legacy))
    return headers


class SecurityHeaders:
    """ASGI middleware adding :data:`NOSNIFF` to every response, and the page frame
    policy to every HTML response that has no ``Content-Security-Policy``.

    Parameters
    ----------
    app : ASGI app
    frame_ancestors : str, default ``'self'``
        CSP ``frame-ancestors`` sources of the pages, already checked.
    """

    def __init__(self, app: ASGIApp, frame_ancestors: str = DEFAULT_PAGE_FRAME_ANCESTORS) -> None:
        self.app = app
        self.page_headers = frame_headers(frame_ancestors)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": self._headers(message.get("headers", ()))}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _headers(self, headers) -> list[tuple[bytes, bytes]]:
        headers = list(headers)
        html = has_policy = has_nosniff = False
        for name, value in headers:
            name = name.lower()
            if name == b"content-type":
                html = value.startswith(b"text/html")
            elif name == b"content-security-policy":
                has_policy = True
            elif name == NOSNIFF[0]:
                has_nosniff = True
        if not has_nosniff:
            headers.append(NOSNIFF)
        if html and not has_policy:
            headers.extend(self.page_headers)
        return headers
