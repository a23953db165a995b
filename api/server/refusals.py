"""What the server answers itself, before the app sees a request: whole responses
written on the transport, each closing the connection.

The protocol (:mod:`api.server.protocol`) refuses a request whose head or target is
too large, or that frames its body twice, and one that is too slow; uvicorn refuses
one beyond its connection limit. These answers are JSON with a ``detail``, like every
error of the app, but for a search page whose address is too long: a person typed a
long text into its box, and gets a page saying how to search with it. Every one
carries the headers the app's answers carry (:mod:`api.asgi.security`).
"""

from __future__ import annotations

import json
from http import HTTPStatus

from starlette.types import Receive, Scope, Send

from api.asgi.security import DEFAULT_PAGE_FRAME_ANCESTORS, NOSNIFF, frame_headers

_PAGE_HEADERS = [NOSNIFF, *frame_headers(DEFAULT_PAGE_FRAME_ANCESTORS)]

# Nothing of the request is echoed: the page is the same for every long address.
TOO_LONG_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Text too long for an address - Similar clinical trials</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:42rem;margin:2rem auto;padding:0 1rem}}
pre{{background:#f4f4f4;padding:.75rem;overflow-x:auto}}</style>
</head>
<body>
<h1>This text is too long to search from the address bar</h1>
<p>The search box sends its text in the page's address, and an address may be at most
{limit:,} bytes long. Search with a shorter text (the title and the conditions of a
trial find its neighbours well), or send a long text, such as a whole protocol, in the
body of a request to the API, <code>POST /similar</code>:</p>
<pre>curl -X POST {origin}/similar -H 'Content-Type: application/json' \\
     -d '{{"text": "...your text...", "k": 10}}'</pre>
<p>The API's documentation is at <a href="/docs">/docs</a>.
<a href="/">Back to the search page</a>.</p>
</body>
</html>
"""


def response(status: int, detail: str, *, page: str | None = None) -> bytes:
    """A whole response of ``status`` that closes the connection: JSON with ``detail``,
    or ``page`` (HTML) when given.

    Not through h11: the connection is closed right after, and h11's state (a request
    half received, or refused) may not accept a response.
    """
    if page is None:
        body = json.dumps({"detail": detail}).encode()
        headers = [(b"content-type", b"application/json"), NOSNIFF]
    else:
        body = page.encode()
        headers = [(b"content-type", b"text/html; charset=utf-8"), *_PAGE_HEADERS]
    headers += [(b"content-length", str(len(body)).encode()), (b"connection", b"close")]
    lines = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}".encode()]
    lines += [name + b": " + value for name, value in headers]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def too_long_page(limit: int, origin: str = "http://this-server") -> str:
    """The 414 page for the search page (``GET /?q=...``)."""
    return TOO_LONG_PAGE.format(limit=limit, origin=origin)


async def service_unavailable(scope: Scope, receive: Receive, send: Send) -> None:
    """uvicorn's answer to a request beyond its connection limit, with :data:`NOSNIFF`."""
    body = b"Service Unavailable"
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
        NOSNIFF,
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
