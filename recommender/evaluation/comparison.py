"""The default ranking against the plain baselines, on labels the index did not write.

One function, :func:`compare_systems`, builds the three systems over the same records
(the default field groups; plain TF-IDF; BM25) and scores each on every label set it
is given: related lists and graded files by full ranking of a trial's own record,
TREC-layout folders by ranking free text. :func:`paired_differences` then gives the
default's gain over each baseline with a 95% bootstrap interval over queries.
``scripts/evaluate_ranking.py`` prints the table of ``docs/evaluation.md`` with them,
and ``notebooks/04_baselines.ipynb`` plots it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from recommender.core import TrialRecord
from recommender.evaluation.baselines import BM25Ranker, field_group_ranker, tfidf_ranker
from recommender.evaluation.labels import load_labels, load_text_queries
from recommender.evaluation.metrics import paired_bootstrap
from recommender.evaluation.rankers import Ranker
from recommender.evaluation.runner import EvaluationResult, evaluate, evaluate_text

SYSTEMS: dict[str, Callable[[Sequence[TrialRecord]], Ranker]] = {
    "default": lambda records: field_group_ranker(records, n_jobs=-1),
    "plain TF-IDF": tfidf_ranker,
    "BM25 (bm25s)": BM25Ranker,
}


def score_label_set(ranker: Ranker, path: str | os.PathLike, ks=(10,)) -> EvaluationResult:
    """Evaluate ``ranker`` on a labels file, or on a TREC-layout folder of free text."""
    path = Path(path)
    if path.is_dir():
        return evaluate_text(ranker, load_text_queries(path), ks)
    return evaluate(ranker, load_labels(path), ks)


def compare_systems(
    records: Sequence[TrialRecord],
    label_sets: Mapping[str, str | os.PathLike],
    systems: Mapping[str, Callable[[Sequence[TrialRecord]], Ranker]] = SYSTEMS,
    ks: Sequence[int] = (10,),
) -> dict[str, dict[str, EvaluationResult]]:
    """``{system: {label set: result}}``; ``records`` sorted by id, each system built once."""
    results = {}
    for name, build in systems.items():
        ranker = build(records)
        results[name] = {label: score_label_set(ranker, p, ks) for label, p in label_sets.items()}
        del ranker  # one system's vectors in memory at a time
    return results


def paired_differences(
    results: Mapping[str, Mapping[str, EvaluationResult]],
    system: str = "default",
    metric: str = "ndcg@10",
) -> dict[str, dict[str, tuple[float, float, float]]]:
    """``{baseline: {label set: (mean, low, high)}}`` of ``system`` minus each baseline."""
    mine = results[system]
    return {
        other: {
            label: paired_bootstrap(theirs[label].per_query, mine[label].per_query, metric)
            for label in mine
        }
        for other, theirs in results.items()
        if other != system
    }
