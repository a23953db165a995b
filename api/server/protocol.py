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
  as chunked;
* **size limits checked however the bytes arrive**: a request head (request line and
  header fields) of more than 16 KiB gets a 431, a target (path and query) of more
  than 8 KiB a 414. h11 bounds only a head still incomplete: one that arrived whole
  in one read passed at any size, the same bytes in two reads did not. The size of a
  complete head is what h11 took from its buffer for it; of an incomplete one, what
  the buffer holds.

A missed deadline is answered with a 408 and a JSON ``detail`` when no response
has started yet, and the connection is closed either way; so is every refusal
(:mod:`api.server.refusals`: JSON, but an HTML page for the search page's long
address, saying to send long text with ``POST /similar``). Use it with
``uvicorn.run(..., http=functools.partial(TimedH11Protocol, header_timeout=...,
body_timeout=...))`` (``recommender serve`` does), or from the uvicorn command line
with its default deadlines: ``uvicorn --http api.server.protocol:TimedH11Protocol ...``.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any, NamedTuple

import h11
from uvicorn.config import Config
from uvicorn.protocols.http import h11_impl
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from api.server import refusals

DEFAULT_HEADER_TIMEOUT = 10.0
DEFAULT_BODY_TIMEOUT = 30.0
# The request line and header fields together (h11's own default, and uvicorn's when
# the config sets none); the request target alone (as Apache and nginx by default).
MAX_HEAD_BYTES = DEFAULT_MAX_HEADER_BYTES = 16 * 1024
MAX_TARGET_BYTES = 8 * 1024

BOTH_LENGTHS_DETAIL = (
    "a request may declare Content-Length or Transfer-Encoding, not both: "
    "they disagree on where the body ends"
)
# Targets of the pages for people: a long address there gets a page, not JSON.
_PAGE_TARGET = re.compile(rb"/(?:trials/[^/?]*/page|embed/[^?]*)?(?:\?.*)?", re.DOTALL)

# uvicorn's answer beyond its connection limit, with the headers of every answer.
h11_impl.service_unavailable = refusals.service_unavailable


class Refusal(NamedTuple):
    """Why a request is refused: its status, a sentence, and its target (as far as it
    arrived: which page a person asked for)."""

    status: int
    detail: str
    target: bytes = b""


class StrictConnection(h11.Connection):
    """An ``h11.Connection`` that refuses a request declaring two body framings, or
    whose head or target is too large however it arrived.

    ``refusal`` keeps the reason, for the protocol's answer.

    Parameters
    ----------
    our_role
        ``h11.SERVER``.
    max_head_bytes : int, default 16 KiB
        Request line and header fields together.
    max_target_bytes : int, default 8 KiB
        The request target (path and query).
    """

    refusal: Refusal | None = None

    def __init__(
        self,
        our_role: Any,
        max_head_bytes: int = MAX_HEAD_BYTES,
        max_target_bytes: int = MAX_TARGET_BYTES,
    ) -> None:
        super().__init__(our_role, max_incomplete_event_size=max_head_bytes)
        self.max_head_bytes = max_head_bytes
        self.max_target_bytes = max_target_bytes

    def next_event(self) -> Any:
        at_head = self.their_state is h11.IDLE
        # h11's buffer (not public, there since h11 0.8): a head is taken out of it whole.
        before = len(self._receive_buffer) if at_head else 0
        try:
            event = super().next_event()
        except h11.RemoteProtocolError as exc:
            if at_head and exc.error_status_hint == 431:  # h11: still no end of the head
                self._refuse(self._incomplete_head(bytes(self._receive_buffer)))
            raise
        if isinstance(event, h11.Request):
            refusal = self._complete_head(event, before - len(self._receive_buffer))
            if refusal is not None:
                self._refuse(refusal)
        return event

    def _complete_head(self, request: h11.Request, size: int) -> Refusal | None:
        if len(request.target) > self.max_target_bytes:
            return self._target_too_long(f"{len(request.target):,} bytes, ", request.target)
        if size > self.max_head_bytes:
            return Refusal(
                431,
                f"the request line and headers are {size:,} bytes, over the limit of "
                f"{self.max_head_bytes:,} bytes",
            )
        if _declares_both_lengths(request.headers):
            return Refusal(400, BOTH_LENGTHS_DETAIL)
        return None

    def _incomplete_head(self, received: bytes) -> Refusal:
        line_end = received.find(b"\n")
        line = received if line_end < 0 else received[:line_end]
        parts = line.split(b" ", 2)
        target = parts[1] if len(parts) > 1 else b""
        if line_end < 0 or len(target) > self.max_target_bytes:
            return self._target_too_long("", target)
        return Refusal(
            431,
            f"the request line and headers are over the limit of {self.max_head_bytes:,} bytes",
        )

    def _target_too_long(self, size: str, target: bytes) -> Refusal:
        """A 414; ``size`` is "90,027 bytes, " when known, "" when the target is cut."""
        return Refusal(
            414,
            f"the request target (path and query) is {size}over the limit of "
            f"{self.max_target_bytes:,} bytes: send a long text in the body of POST /similar",
            target,
        )

    def _refuse(self, refusal: Refusal) -> None:
        self.refusal = refusal
        raise h11.RemoteProtocolError(refusal.detail, error_status_hint=refusal.status)


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
    max_target_bytes : int, default 8 KiB
        Longest request target (path and query); the head's limit is uvicorn's
        ``h11_max_incomplete_event_size``, 16 KiB by default.
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
        max_target_bytes: int = MAX_TARGET_BYTES,
    ) -> None:
        if header_timeout <= 0 or body_timeout <= 0:
            raise ValueError(
                f"timeouts must be positive, got header {header_timeout}, body {body_timeout}"
            )
        super().__init__(config, server_state, app_state, _loop)
        max_head_bytes = config.h11_max_incomplete_event_size or MAX_HEAD_BYTES
        self.conn = StrictConnection(h11.SERVER, max_head_bytes, max_target_bytes)
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
        # Called by uvicorn for every request h11 (or StrictConnection) refuses; its own
        # answer says only "Invalid HTTP request received.", as plain text.
        refusal = getattr(self.conn, "refusal", None) or Refusal(400, msg)
        page = None
        if refusal.status == 414 and _PAGE_TARGET.fullmatch(refusal.target):
            host, port = self.server or ("localhost", None)
            origin = f"http://{host}" + (f":{port}" if port else "")
            page = refusals.too_long_page(self.conn.max_target_bytes, origin)
        self.transport.write(refusals.response(refusal.status, refusal.detail, page=page))
        self.transport.close()

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
            self.transport.write(refusals.response(408, detail))
        if answering:
            # The app waits for the rest of the body: it now reads a disconnect,
            # and anything it answers is dropped, not written.
            self.cycle.disconnected = True
        self.transport.close()
