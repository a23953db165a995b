"""Uvicorn's h11 protocol with the deadlines it lacks: a client cannot hold a connection.

Uvicorn closes a kept-alive connection that stays idle between requests, but it puts
no limit on how long a request's headers or body may take to arrive: a client that
sends half its headers and then nothing holds its connection (and a slot of
``limit_concurrency``) for as long as it likes. :class:`TimedH11Protocol` adds

* a **header deadline**: a request's headers must be complete ``header_timeout``
  seconds after the connection opened or, on a kept-alive connection, after the
  first byte of that request arrived;
* a **body deadline**: its body must be complete ``body_timeout`` seconds after
  its headers (a total, not an idle time, so a trickle of bytes does not reset it);
* a refusal (400) of a request that declares both ``Content-Length`` and
  ``Transfer-Encoding``: the two framings disagree on where the body ends, which is
  how requests are smuggled past a proxy (RFC 9112, section 6.1). h11 would read it
  as chunked.

A missed deadline is answered with a 408 and a JSON ``detail`` when no response
has started yet, and the connection is closed either way. Use it with
``uvicorn.run(..., http=functools.partial(TimedH11Protocol, header_timeout=...,
body_timeout=...))`` (``recommender serve`` does), or from the uvicorn command line
with its default deadlines: ``uvicorn --http api.server.protocol:TimedH11Protocol ...``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import h11
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

DEFAULT_HEADER_TIMEOUT = 10.0
DEFAULT_BODY_TIMEOUT = 30.0
# h11's own default, used by uvicorn when the config sets none.
DEFAULT_MAX_HEADER_BYTES = 16 * 1024

BOTH_LENGTHS_DETAIL = (
    "a request may declare Content-Length or Transfer-Encoding, not both: "
    "they disagree on where the body ends"
)


class StrictConnection(h11.Connection):
    """An ``h11.Connection`` that refuses a request declaring two body framings.

    ``refusal`` keeps the reason, for the protocol's 400 answer.
    """

    refusal: str | None = None

    def next_event(self) -> Any:
        event = super().next_event()
        if isinstance(event, h11.Request) and _declares_both_lengths(event.headers):
            self.refusal = BOTH_LENGTHS_DETAIL
            raise h11.RemoteProtocolError(BOTH_LENGTHS_DETAIL, error_status_hint=400)
        return event


def _declares_both_lengths(headers: Any) -> bool:
    names = {name.lower() for name, _ in headers}
    return b"content-length" in names and b"transfer-encoding" in names


class TimedH11Protocol(H11Protocol):
    """Uvicorn's h11 protocol with header and body deadlines (see the module docstring).

    Parameters
    ----------
    config, server_state, app_state, _loop
        As uvicorn passes them to every HTTP protocol.
    header_timeout : float, default 10
        Seconds for a request's headers to arrive.
    body_timeout : float, default 30
        Seconds for a request's body to arrive once its headers have.
    """

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        header_timeout: float = DEFAULT_HEADER_TIMEOUT,
        body_timeout: float = DEFAULT_BODY_TIMEOUT,
    ) -> None:
        if header_timeout <= 0 or body_timeout <= 0:
            raise ValueError(
                f"timeouts must be positive, got header {header_timeout}, body {body_timeout}"
            )
        super().__init__(config, server_state, app_state, _loop)
        max_header_bytes = config.h11_max_incomplete_event_size or DEFAULT_MAX_HEADER_BYTES
        self.conn = StrictConnection(h11.SERVER, max_header_bytes)
        self.header_timeout = header_timeout
        self.body_timeout = body_timeout
        self._deadline: asyncio.TimerHandle | None = None
        self._waiting_for: str | None = None  # "headers" or "body" while a deadline runs

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._expect("headers")

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        state = self.conn.their_state
        if self.transport.is_closing():
            self._expect(None)
        elif state is h11.IDLE:
            # Bytes of a new request on a kept-alive connection start its clock;
            # the first request's clock started with the connection.
            if self._waiting_for != "headers":
                self._expect("headers")
        elif state is h11.SEND_BODY:
            if self._waiting_for != "body":
                self._expect("body")
        else:
            self._expect(None)  # the request is complete (or the connection is done)

    def connection_lost(self, exc: Exception | None) -> None:
        self._expect(None)
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        # uvicorn's own answer says only "Invalid HTTP request received."
        refusal = getattr(self.conn, "refusal", None)
        super().send_400_response(refusal or msg)

    def _expect(self, what: str | None) -> None:
        """Start the deadline for the ``headers`` or the ``body``, or stop it (None)."""
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._waiting_for = what
        if what is not None:
            seconds = self.header_timeout if what == "headers" else self.body_timeout
            self._deadline = self.loop.call_later(seconds, self._time_out, what, seconds)

    def _time_out(self, what: str, seconds: float) -> None:
        self._deadline = None
        self._waiting_for = None
        if self.transport.is_closing():
            return
        self.logger.warning("closing a connection whose request %s took over %g s", what, seconds)
        # Waiting for headers, ``cycle`` is the previous request's (or None); waiting
        # for a body, it is this request's, which the app may be answering already.
        answering = what == "body" and self.cycle is not None
        if not (answering and self.cycle.response_started):
            detail = f"the request {what} did not arrive within {seconds:g} seconds"
            self.transport.write(_request_timeout_response(detail))
        if answering:
            # The app waits for the rest of the body: it now reads a disconnect,
            # and anything it answers is dropped, not written.
            self.cycle.disconnected = True
        self.transport.close()


def _request_timeout_response(detail: str) -> bytes:
    """A whole 408 response, written on the transport directly.

    Not through h11: the connection is closed right after, and h11's state (a
    request half received) would refuse a response that does not follow one.
    """
    body = json.dumps({"detail": detail}).encode()
    head = (
        "HTTP/1.1 408 Request Timeout\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body
