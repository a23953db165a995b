"""``recommender update``: new and changed studies brought into an index without a
full rebuild (:func:`update_index`; the stages in this package's modules)."""

from recommender.pipelines.update.changes import Changes, classify, merge_records
from recommender.pipelines.update.drift import (
    DriftThresholds,
    format_drift,
    measure_drift,
    unseen_words,
)
from recommender.pipelines.update.run import UpdateInputError, UpdateSummary, update_index
from recommender.pipelines.update.vectors import updated_vectors

__all__ = [
    "Changes",
    "DriftThresholds",
    "UpdateInputError",
    "UpdateSummary",
    "classify",
    "format_drift",
    "measure_drift",
    "merge_records",
    "unseen_words",
    "update_index",
    "updated_vectors",
]
