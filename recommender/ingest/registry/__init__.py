"""The registry's API v2, downloaded into a folder ``build`` and ``update`` read: the
HTTP client (:class:`RegistryClient`) and the resumable download (:func:`fetch_studies`)."""

from recommender.ingest.registry.client import (
    DEFAULT_BASE_URL,
    RegistryClient,
    check_base_url,
    retry_after_seconds,
)
from recommender.ingest.registry.download import FetchSummary, fetch_studies, format_fetch_summary

__all__ = [
    "DEFAULT_BASE_URL",
    "FetchSummary",
    "RegistryClient",
    "check_base_url",
    "fetch_studies",
    "format_fetch_summary",
    "retry_after_seconds",
]
