"""Download studies from the registry's API v2 into a folder that ``build`` reads.

``GET {base}/studies`` is paged: each response is ``{"studies": [...],
"nextPageToken": "..."}`` and the token asks for the next page. Each page is written,
as the bytes the API sent, to ``page-00001.json``, ``page-00002.json``, ... (written
to a temporary name and renamed, so a page on disk is always whole), and after each
page a small state file records the next token: an interrupted download resumes where
it stopped instead of starting over. ``recommender build --source DIR`` and
``recommender update --source DIR`` read the folder like any other API download.

The client is polite and patient: requests are spaced to a rate limit (the registry
asks for about 50 a minute), time out, and are retried with exponential backoff
(honouring ``Retry-After``) on HTTP 429 and 5xx, on network errors and on a truncated
or invalid JSON body. HTTP is httpx (connection reuse, gzip, timeouts, redirects),
retrying is tenacity; what is retried and how long to wait is decided here. The
registry's data timestamp (``GET {base}/version``) is recorded in the state file, so
a download says which day's registry it holds.
"""

from __future__ import annotations

import email.utils
import json
import os
import re
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import tenacity

from recommender.ingest.limits import DEFAULT_MAX_FILE_BYTES, format_size

DEFAULT_BASE_URL = "https://clinicaltrials.gov/api/v2"
MAX_PAGE_SIZE = 1000
# A page is one file to `build`, which refuses files over 16 MiB by default; 200
# full registry studies (about 20 KB each, a few with results far more) stay far
# below that, 1000 may not.
DEFAULT_PAGE_SIZE = 200
DEFAULT_REQUESTS_PER_MINUTE = 50.0
# Not ``.json``: the readers treat every ``.json`` file in a folder as registry data.
STATE_FILE = "fetch.state"
STATE_FORMAT = "trial-recommender-fetch"
PAGE_GLOB = "page-*.json"
USER_AGENT = f"trial-recommender-fetch/0.1 (httpx/{httpx.__version__})"
_PAGE_NAME = re.compile(r"page-(\d{5,})\.json")


class FetchError(Exception):
    """The registry could not be reached or kept failing; the resume state is kept."""


class FetchUsageError(ValueError):
    """A bad argument, a request the server refused (4xx) or a folder that cannot be resumed."""


@dataclass(frozen=True)
class FetchQuery:
    """Which studies to download.

    Parameters
    ----------
    cond : str, optional
        ``query.cond``: conditions or disease (the registry's search syntax).
    term : str, optional
        ``query.term``: other terms.
    updated_since : str, optional
        ``YYYY-MM-DD``: only studies whose last update was posted on or after that
        day (``filter.advanced=AREA[LastUpdatePostDate]RANGE[day,MAX]``).
    max_studies : int, optional
        Stop after this many studies.
    page_size : int, default 200
        Studies per request (one page file), at most 1000 (the API's limit).
    """

    cond: str | None = None
    term: str | None = None
    updated_since: str | None = None
    max_studies: int | None = None
    page_size: int = DEFAULT_PAGE_SIZE

    def __post_init__(self) -> None:
        if not 1 <= self.page_size <= MAX_PAGE_SIZE:
            raise FetchUsageError(f"page size must be 1..{MAX_PAGE_SIZE}, got {self.page_size}")
        if self.max_studies is not None and self.max_studies < 1:
            raise FetchUsageError(f"--max must be at least 1, got {self.max_studies}")
        if self.updated_since is not None:
            parse_day(self.updated_since)
        for name in ("cond", "term"):
            if getattr(self, name) is not None and not getattr(self, name).strip():
                raise FetchUsageError(f"--query.{name} is empty")

    @property
    def complete(self) -> bool:
        """Whether this asks for the whole registry (a snapshot ``update`` can trust)."""
        return self.cond is None and self.term is None and self.updated_since is None

    def params(self) -> dict[str, str]:
        """The API's query parameters for the first page (no token, no page size)."""
        params = {"format": "json"}
        if self.cond is not None:
            params["query.cond"] = self.cond
        if self.term is not None:
            params["query.term"] = self.term
        if self.updated_since is not None:
            params["filter.advanced"] = f"AREA[LastUpdatePostDate]RANGE[{self.updated_since},MAX]"
        return params


def parse_day(text: str) -> str:
    """``text`` as an ISO day ``YYYY-MM-DD``, or :class:`FetchUsageError`."""
    value = text.strip()
    try:
        if len(value) != len("2024-01-31"):  # fromisoformat also takes 20240131
            raise ValueError
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise FetchUsageError(f"{text!r} is not a date (expected YYYY-MM-DD)") from None


# -- the HTTP client ---------------------------------------------------------------


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


# -- the download ---------------------------------------------------------------------


@dataclass
class FetchState:
    """What a download folder holds so far; saved as JSON in :data:`STATE_FILE`."""

    base_url: str
    query: dict
    registry_version: dict
    started_at: str
    updated_at: str = ""
    pages: int = 0
    studies: int = 0
    total_count: int | None = None
    next_page_token: str | None = None
    done: bool = False
    stopped_at_max: bool = False
    resumed: int = 0
    format: str = STATE_FORMAT

    @property
    def complete_registry(self) -> bool:
        """A whole-registry download, finished: every study the registry had."""
        return self.done and not self.stopped_at_max and FetchQuery(**self.query).complete


@dataclass
class FetchSummary:
    """What one ``fetch`` call did."""

    folder: Path
    state: FetchState
    pages_written: int
    studies_written: int
    already_done: bool = False


def read_state(folder: str | os.PathLike) -> FetchState | None:
    """The download state of ``folder``; None when it holds none.

    Raises
    ------
    FetchUsageError
        The state file exists but cannot be read.
    """
    path = Path(folder) / STATE_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != STATE_FORMAT:
            raise ValueError(f"not a {STATE_FORMAT} state")
        return FetchState(**data)
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        raise FetchUsageError(f"{path} is unreadable ({exc}); fetch again with --restart") from None


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _save_state(folder: Path, state: FetchState) -> None:
    state.updated_at = _now()
    text = json.dumps(asdict(state), indent=1, ensure_ascii=False) + "\n"
    _write_atomic(folder / STATE_FILE, text.encode("utf-8"))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def page_path(folder: Path, number: int) -> Path:
    return folder / f"page-{number:05d}.json"


def _existing_pages(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob(PAGE_GLOB) if _PAGE_NAME.fullmatch(p.name))


def fetch_studies(
    out: str | os.PathLike,
    query: FetchQuery,
    client: RegistryClient,
    *,
    restart: bool = False,
    log: Callable[[str], None] | None = None,
) -> FetchSummary:
    """Download the studies ``query`` selects into ``out``, resuming a started download.

    Parameters
    ----------
    out : path
        Folder of pages and :data:`STATE_FILE`; created if needed.
    query : FetchQuery
    client : RegistryClient
    restart : bool, default False
        Delete the pages and state already in ``out`` and start over.
    log : callable, optional
        Receives one progress line per page.

    Returns
    -------
    FetchSummary

    Raises
    ------
    FetchUsageError
        ``out`` holds a download of another query or server, or pages without a
        state, or the server refused the request.
    FetchError
        The registry kept failing; what was written and the state stay, so running
        the same command again resumes.
    """
    say = log or (lambda _line: None)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    if restart:
        _clear(folder)
    state = _open_state(folder, query, client, say)
    if state.done:
        say(f"{folder}: download already complete ({state.studies:,} studies); nothing to do")
        return FetchSummary(folder, state, 0, 0, already_done=True)
    pages_before, studies_before = state.pages, state.studies
    while not state.done:
        _fetch_page(folder, state, query, client)
        _save_state(folder, state)
        say(_progress_line(state))
        _warn_if_too_large(page_path(folder, state.pages), say)
    return FetchSummary(folder, state, state.pages - pages_before, state.studies - studies_before)


def _clear(folder: Path) -> None:
    for page in _existing_pages(folder):
        page.unlink()
    (folder / STATE_FILE).unlink(missing_ok=True)


def _open_state(
    folder: Path, query: FetchQuery, client: RegistryClient, say: Callable[[str], None]
) -> FetchState:
    """The state to continue from: the folder's own, checked, or a new one."""
    state = read_state(folder)
    if state is None:
        if _existing_pages(folder):
            raise FetchUsageError(
                f"{folder} holds pages but no {STATE_FILE}; use another folder or --restart"
            )
        version = _registry_version(client)
        state = FetchState(client.base_url, asdict(query), version, started_at=_now())
        _save_state(folder, state)
        say(f"registry data of {version.get('dataTimestamp', 'unknown date')}")
        return state
    if state.base_url != client.base_url or state.query != asdict(query):
        raise FetchUsageError(
            f"{folder} holds a download of another query or server "
            f"({state.base_url}, {state.query}); use another folder or --restart"
        )
    missing = [n for n in range(1, state.pages + 1) if not page_path(folder, n).is_file()]
    if missing:
        raise FetchUsageError(f"{folder}: page {missing[0]} is missing; fetch with --restart")
    if not state.done:
        _note_resume(state, _registry_version(client), say)
    return state


def _note_resume(state: FetchState, version: dict, say: Callable[[str], None]) -> None:
    state.resumed += 1
    say(f"resuming after page {state.pages} ({state.studies:,} studies so far)")
    before, now = state.registry_version.get("dataTimestamp"), version.get("dataTimestamp")
    if before != now:
        # The registry refreshes daily; pages from before and after may disagree on
        # a study, and a page token may no longer be accepted.
        say(f"warning: the registry's data changed since this download started ({before} -> {now})")


def _registry_version(client: RegistryClient) -> dict:
    def check(data: Any) -> None:
        if not isinstance(data, dict):
            raise ValueError("the version is not a JSON object")

    data, _ = client.get_json("/version", check=check)
    return {k: data[k] for k in ("apiVersion", "dataTimestamp") if isinstance(data.get(k), str)}


def _fetch_page(folder: Path, state: FetchState, query: FetchQuery, client: RegistryClient) -> None:
    """Fetch the next page, write it, and advance ``state`` (not yet saved)."""
    params = query.params()
    wanted = query.page_size
    if query.max_studies is not None:
        wanted = min(wanted, query.max_studies - state.studies)
    params["pageSize"] = str(wanted)
    if state.next_page_token:
        params["pageToken"] = state.next_page_token
    if state.pages == 0:
        params["countTotal"] = "true"  # the API counts on the first page only
    data, body = client.get_json("/studies", params, check=check_page)
    _write_atomic(page_path(folder, state.pages + 1), body)
    state.pages += 1
    state.studies += len(data["studies"])
    if state.pages == 1 and isinstance(data.get("totalCount"), int):
        state.total_count = data["totalCount"]
    state.next_page_token = data.get("nextPageToken")
    at_max = query.max_studies is not None and state.studies >= query.max_studies
    state.stopped_at_max = at_max and state.next_page_token is not None
    # An empty page with a token would loop forever: treat it as the end.
    state.done = state.next_page_token is None or at_max or not data["studies"]


def _warn_if_too_large(page: Path, say: Callable[[str], None]) -> None:
    size = page.stat().st_size
    if size > DEFAULT_MAX_FILE_BYTES:
        say(
            f"warning: {page.name} is {format_size(size)}, over the "
            f"{format_size(DEFAULT_MAX_FILE_BYTES)} that `build` and `update` read of one "
            "file by default: build with a larger --max-file-size, or fetch again into a "
            "new folder with a smaller --page-size"
        )


def _progress_line(state: FetchState) -> str:
    total, cap = state.total_count, state.query.get("max_studies")
    if total is not None and cap is not None:
        total = min(total, cap)
    of = f" of {total:,} ({100 * state.studies / total:.0f}%)" if total else ""
    end = "; done" if state.done else ""
    return f"page {state.pages}: {state.studies:,} studies{of}{end}"


def format_fetch_summary(summary: FetchSummary) -> str:
    """What a download holds, for people, with the command that uses it next."""
    state = summary.state
    when = state.registry_version.get("dataTimestamp", "an unknown date")
    lines = [
        f"{state.studies:,} studies in {state.pages:,} pages to {summary.folder} "
        f"(registry data of {when})"
    ]
    if summary.already_done:
        lines[0] = "already complete: " + lines[0]
    elif state.resumed:
        lines.append(f"this run: {summary.studies_written:,} studies (resumed)")
    if state.stopped_at_max:
        lines.append("stopped at --max: the registry holds more")
    snapshot = " --snapshot" if state.complete_registry else ""
    lines.append(f"next: recommender update --source {summary.folder}{snapshot}")
    return "\n".join(lines)


def snapshot_problem(folder: str | os.PathLike) -> str | None:
    """Why ``folder`` cannot serve as a complete snapshot of the registry, or None.

    Only folders written by :func:`fetch_studies` are judged; any other source is
    the user's word.
    """
    path = Path(folder)
    if not path.is_dir():
        return None
    state = read_state(path)
    if state is None or state.complete_registry:
        return None
    if not state.done:
        return f"{path} is an unfinished download (resume it with `recommender fetch`)"
    return f"{path} is a filtered or capped download ({state.query}), not the whole registry"
