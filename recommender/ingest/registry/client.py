"""The HTTP client of the registry's API v2: polite (rate-limited), patient (timeouts,
retries with exponential backoff honouring ``Retry-After`` on 429, 5xx, network errors
and truncated or invalid JSON) and strict about what it accepts (:func:`check_page`).

HTTP is httpx (connection reuse, gzip, timeouts, redirects), retrying is tenacity;
what is retried and how long to wait is decided here.
"""

from __future__ import annotations

import email.utils
import json
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import httpx
import tenacity

from recommender.ingest.errors import FetchError, FetchUsageError

DEFAULT_BASE_URL = "https://clinicaltrials.gov/api/v2"

DEFAULT_REQUESTS_PER_MINUTE = 50.0

USER_AGENT = f"trial-recommender-fetch/0.1 (httpx/{httpx.__version__})"


@dataclass
class RegistryClient:
    """GET JSON from the registry API with a rate limit, timeouts and retries.

    Parameters
    ----------
    base_url : str
        ``https://clinicaltrials.gov/api/v2`` or a test server's address.
    timeout : float, default 60
        Seconds to wait for a connection, a read or a write.
    retries : int, default 5
        Further attempts after a failed one (429, 5xx, network error, bad JSON).
    backoff : float, default 2
        Seconds before the first retry, doubled for each next one.
    max_wait : float, default 300
        Longest single wait, whatever ``Retry-After`` asks for.
    requests_per_minute : float, default 50
        Requests are spaced at least ``60 / requests_per_minute`` seconds apart;
        0 means no limit.
    sleep, clock : callable
        ``time.sleep`` and ``time.monotonic``; tests pass fakes.
    log : callable, optional
        Receives one line per retry.
    transport : httpx.BaseTransport, optional
        For tests (``httpx.MockTransport``); the network otherwise.

    A client holds a pool of connections: close it (or use it in a ``with``) when done.
    """

    base_url: str = DEFAULT_BASE_URL
    timeout: float = 60.0
    retries: int = 5
    backoff: float = 2.0
    max_wait: float = 300.0
    requests_per_minute: float = DEFAULT_REQUESTS_PER_MINUTE
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    log: Callable[[str], None] = lambda _line: None
    transport: httpx.BaseTransport | None = field(default=None, repr=False)
    requests_made: int = field(default=0, init=False)
    _last_request: float | None = field(default=None, init=False, repr=False)
    _http: httpx.Client = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.base_url = check_base_url(self.base_url)
        if self.retries < 0 or self.timeout <= 0 or self.requests_per_minute < 0:
            raise FetchUsageError("retries must be >= 0, timeout > 0 and the rate >= 0")
        self._http = httpx.Client(
            timeout=self.timeout,
            headers={"Accept": "application/json", "User-Agent": USER_AGENT},
            follow_redirects=True,
            transport=self.transport,
        )

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def get_json(
        self,
        path: str,
        params: Mapping[str, str] | None = None,
        check: Callable[[Any], None] | None = None,
    ) -> tuple[Any, bytes]:
        """GET ``base_url + path`` and parse the JSON body, retrying what may pass.

        Parameters
        ----------
        path : str
            ``/studies`` or ``/version``.
        params : mapping, optional
            Query parameters.
        check : callable, optional
            Raises ``ValueError`` when the parsed body is not what was asked for (a
            page without ``studies``); that is retried like a truncated body.

        Returns
        -------
        data : object
            The parsed JSON.
        body : bytes
            The body as received (after undoing any gzip encoding).

        Raises
        ------
        FetchUsageError
            The server refused the request (4xx other than 429): retrying won't help.
        FetchError
            Still failing after ``retries`` retries.
        """
        url = self.base_url + path + ("?" + urllib.parse.urlencode(params) if params else "")
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(_Retryable),
            stop=tenacity.stop_after_attempt(self.retries + 1),
            wait=self._wait,
            sleep=self.sleep,
            before_sleep=self._log_retry,
            reraise=True,
        )
        try:
            return retrying(self._attempt, url, check)
        except _Retryable as failed:
            raise FetchError(
                f"{url}: {failed.reason}; gave up after {self.retries + 1} attempts"
            ) from None

    def _wait(self, state: tenacity.RetryCallState) -> float:
        """Exponential backoff, or longer when the server's ``Retry-After`` asks."""
        backoff = self.backoff * 2 ** (state.attempt_number - 1)
        failed = state.outcome.exception() if state.outcome else None
        asked = failed.retry_after if isinstance(failed, _Retryable) else 0.0
        return min(max(backoff, asked), self.max_wait)

    def _log_retry(self, state: tenacity.RetryCallState) -> None:
        failed = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        reason = failed.reason if isinstance(failed, _Retryable) else _describe(failed)
        self.log(f"{reason}; retrying in {wait:.1f} s ({state.attempt_number}/{self.retries})")

    def _attempt(self, url: str, check: Callable[[Any], None] | None) -> tuple[Any, bytes]:
        """One request; raises :class:`_Retryable` for what another attempt may cure."""
        self._throttle()
        try:
            response = self._http.get(url)
            body = response.content  # read whole: a cut body or gzip stream fails here
        except httpx.HTTPError as exc:
            # Timeouts, refused or reset connections, a body shorter than its
            # Content-Length, a damaged gzip stream.
            raise _Retryable(f"network error ({_describe(exc)})") from None
        status = response.status_code
        if status == 429 or status >= 500:
            raise _Retryable(
                f"HTTP {status}", retry_after_seconds(response.headers.get("Retry-After"))
            )
        if status != 200:
            snippet = body[:300].decode("utf-8", "replace").strip()
            raise FetchUsageError(
                f"{url}: the registry refused the request (HTTP {status}): {snippet}"
            )
        try:
            data = json.loads(body)
            if check is not None:
                check(data)
        except ValueError as exc:
            raise _Retryable(f"truncated or invalid JSON ({_describe(exc)})") from None
        return data, body

    def _throttle(self) -> None:
        # Space requests evenly: a burst then a pause would still trip rate limits.
        if self.requests_per_minute and self._last_request is not None:
            wait = self._last_request + 60.0 / self.requests_per_minute - self.clock()
            if wait > 0:
                self.sleep(wait)
        self._last_request = self.clock()
        self.requests_made += 1


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after or 0.0


def _describe(exc: BaseException | None) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds asked for by a ``Retry-After`` header (delay seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def check_base_url(url: str) -> str:
    """``url`` without a trailing slash, or :class:`FetchUsageError` if not http(s)."""
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise FetchUsageError(f"{url!r} is not an http(s) URL such as {DEFAULT_BASE_URL}")
    return url.strip().rstrip("/")


def check_page(data: Any) -> None:
    """Raise ``ValueError`` unless ``data`` looks like an API page of studies."""
    if not isinstance(data, dict) or not isinstance(data.get("studies"), list):
        raise ValueError("the response is not a page of studies")
    token = data.get("nextPageToken")
    if token is not None and not (isinstance(token, str) and token):
        raise ValueError("nextPageToken is not a string")
