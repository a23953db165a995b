"""How good the recommendations are, on labels the index did not write: label sets,
metrics, rankers and the runner (``recommender evaluate``, the notebooks).

The baselines (plain TF-IDF with scikit-learn, BM25 with bm25s) and the comparison of
systems are in :mod:`recommender.evaluation.baselines` and
:mod:`recommender.evaluation.comparison`, imported from there: they need libraries
that building and serving do not."""

from recommender.evaluation.clusters import linked_folds, linked_queries
from recommender.evaluation.labels import (
    LabelFormatError,
    LabelSet,
    TextQuerySet,
    load_labels,
    load_text_queries,
    parse_labels,
)
from recommender.evaluation.mesh_labels import (
    DevLabels,
    MeshRule,
    build_dev_labels,
    meta_path,
    write_labels,
)
from recommender.evaluation.metrics import (
    DEFAULT_KS,
    dcg,
    metric_names,
    paired_bootstrap,
    query_metrics,
)
from recommender.evaluation.rankers import IndexRanker, Ranker, VectorRanker, free_text_vectorizer
from recommender.evaluation.runner import (
    EvaluationResult,
    evaluate,
    evaluate_text,
    format_table,
    parse_ks,
    restrict_to_index,
)

__all__ = [
    "DEFAULT_KS",
    "DevLabels",
    "EvaluationResult",
    "IndexRanker",
    "LabelFormatError",
    "LabelSet",
    "MeshRule",
    "Ranker",
    "TextQuerySet",
    "VectorRanker",
    "build_dev_labels",
    "dcg",
    "evaluate",
    "evaluate_text",
    "format_table",
    "free_text_vectorizer",
    "linked_folds",
    "linked_queries",
    "load_labels",
    "load_text_queries",
    "meta_path",
    "metric_names",
    "paired_bootstrap",
    "parse_ks",
    "parse_labels",
    "query_metrics",
    "restrict_to_index",
    "write_labels",
]
