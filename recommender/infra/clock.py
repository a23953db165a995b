"""The time stamps the index and the download folders record."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> str:
    """Now, in UTC, as ISO 8601 to the second (``2026-12-07T10:12:48+00:00``)."""
    return datetime.now(UTC).isoformat(timespec="seconds")
