"""A download folder, as ``recommender fetch`` writes it: what it asks the registry for
(:class:`FetchQuery`), how far it got (:class:`FetchState`, saved in
:data:`STATE_FILE` after every page) and whether it holds the whole registry
(:func:`snapshot_problem`, which ``update --snapshot`` asks before removing studies).

No HTTP here: the client and the download loop are in :mod:`recommender.ingest.registry`.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

from recommender.infra import utc_now
from recommender.ingest.errors import FetchUsageError

MAX_PAGE_SIZE = 1000

# A page is one file to `build`, which refuses files over 16 MiB by default; 200
# full registry studies (about 20 KB each, a few with results far more) stay far
# below that, 1000 may not.
DEFAULT_PAGE_SIZE = 200

# Not ``.json``: the readers treat every ``.json`` file in a folder as registry data.
STATE_FILE = "fetch.state"

STATE_FORMAT = "trial-recommender-fetch"


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


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def save_state(folder: Path, state: FetchState) -> None:
    state.updated_at = utc_now()
    text = json.dumps(asdict(state), indent=1, ensure_ascii=False) + "\n"
    write_atomic(folder / STATE_FILE, text.encode("utf-8"))


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
