"""Registry data in: the registry's own formats read into :class:`TrialRecord` s
(:func:`read_records`, :func:`iter_records`; the formats in
:mod:`recommender.ingest.formats`), and download folders of its API v2
(:mod:`recommender.ingest.downloads`; the client in :mod:`recommender.ingest.registry`,
imported from there: it needs the HTTP client)."""

from recommender.ingest.ctgov_json_study import parse_study
from recommender.ingest.ctgov_xml import parse_study_xml
from recommender.ingest.downloads import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    STATE_FILE,
    FetchQuery,
    FetchState,
    parse_day,
    read_state,
    snapshot_problem,
)
from recommender.ingest.errors import (
    FetchError,
    FetchUsageError,
    NotAStudyError,
    RecordError,
    SourceError,
)
from recommender.ingest.formats import FORMATS, KINDS, PARALLEL_FORMATS, detect_format
from recommender.ingest.limits import DEFAULT_LIMITS, ReadLimits
from recommender.ingest.report import IngestReport, SkippedItem, SourceSummary
from recommender.ingest.sources import extract_sources, iter_records, iter_source, read_records
from recommender.ingest.spool import spool_records

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_PAGE_SIZE",
    "FORMATS",
    "KINDS",
    "MAX_PAGE_SIZE",
    "PARALLEL_FORMATS",
    "STATE_FILE",
    "FetchError",
    "FetchQuery",
    "FetchState",
    "FetchUsageError",
    "IngestReport",
    "NotAStudyError",
    "ReadLimits",
    "RecordError",
    "SkippedItem",
    "SourceError",
    "SourceSummary",
    "detect_format",
    "extract_sources",
    "iter_records",
    "iter_source",
    "parse_day",
    "parse_study",
    "parse_study_xml",
    "read_records",
    "read_state",
    "snapshot_problem",
    "spool_records",
]
