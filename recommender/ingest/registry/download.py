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

import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from recommender.infra import utc_now
from recommender.ingest.downloads import (
    STATE_FILE,
    FetchQuery,
    FetchState,
    read_state,
    save_state,
    write_atomic,
)
from recommender.ingest.errors import FetchUsageError
from recommender.ingest.limits import DEFAULT_MAX_FILE_BYTES, format_size
from recommender.ingest.registry.client import RegistryClient, check_page

PAGE_GLOB = "page-*.json"

_PAGE_NAME = re.compile(r"page-(\d{5,})\.json")


@dataclass
class FetchSummary:
    """What one ``fetch`` call did."""

    folder: Path
    state: FetchState
    pages_written: int
    studies_written: int
    already_done: bool = False


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
        save_state(folder, state)
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
        state = FetchState(client.base_url, asdict(query), version, started_at=utc_now())
        save_state(folder, state)
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
    write_atomic(page_path(folder, state.pages + 1), body)
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
