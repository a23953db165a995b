"""What the commands run end to end: a full build (:func:`build_index`), the check
that an index is current (:func:`check_index`), the export of every related list
(:func:`export_related`); the incremental update is :mod:`recommender.pipelines.update`."""

from recommender.pipelines.build import (
    BuildSummary,
    NoTermsError,
    SchedulerError,
    build_index,
    check_scheduler,
)
from recommender.pipelines.export import ExportError, ExportSummary, export_related
from recommender.pipelines.freshness import IndexCheck, check_index
from recommender.pipelines.provenance import describe_source

__all__ = [
    "BuildSummary",
    "ExportError",
    "ExportSummary",
    "IndexCheck",
    "NoTermsError",
    "SchedulerError",
    "build_index",
    "check_index",
    "check_scheduler",
    "describe_source",
    "export_related",
]
