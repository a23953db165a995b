"""How good are the recommendations? A ranker run over a label set, metrics averaged.

Three protocols:

* **full ranking** (default): the system ranks every indexed trial for the query
  (the query itself never counts) and the top ``max(ks)`` are scored;
* **re-ranking** (``rerank=True``, graded judgements only): the system only orders
  the judged candidates of each query by cosine to the query, the usual protocol
  of trial-similarity benchmarks; judged candidates missing from the index go last;
* **free text** (:func:`evaluate_text`, a labels folder): each query's text is
  vectorised as the service vectorises a posted ``text`` and ranked against every
  indexed trial. Judgements of trials the index lacks are dropped first (and
  counted), so the figures measure ranking, not the corpus's coverage of the
  judged trials.

The metrics: :mod:`recommender.evaluation.metrics`; the label formats:
:mod:`recommender.evaluation.labels`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from recommender.evaluation.labels import LabelSet, TextQuerySet
from recommender.evaluation.metrics import DEFAULT_KS, metric_names, query_metrics
from recommender.evaluation.rankers import Ranker

if TYPE_CHECKING:
    from recommender.core import TrialRecord


@dataclass
class EvaluationResult:
    """Mean metrics over the evaluated queries, and what was left out.

    Attributes
    ----------
    mode : str
        ``"full"``, ``"rerank"`` or ``"text"`` (free-text queries, full ranking).
    metrics : dict of str to float
        Macro averages (see the module docstring), including ``coverage``.
    per_query : dict of str to dict of str to float
        Each evaluated query's metrics, for paired comparisons.
    not_in_index : list of str
        Evaluated queries the index lacks (scored 0).
    skipped : list of str
        Queries without a relevant judgement (not evaluated); for free-text queries,
        also those left without one once judgements outside the index were dropped.
    dropped_judgements : int, default 0
        Judgements (any grade) of trials the index lacks, dropped before scoring
        free-text queries.
    """

    mode: str
    metrics: dict[str, float]
    per_query: dict[str, dict[str, float]] = field(repr=False)
    not_in_index: list[str]
    skipped: list[str]
    dropped_judgements: int = 0

    @property
    def queries(self) -> int:
        return len(self.per_query)

    def to_json(self) -> dict:
        return {
            "queries": self.queries,
            "mode": self.mode,
            "metrics": {name: round(value, 4) for name, value in self.metrics.items()},
            "not_in_index": len(self.not_in_index),
            "skipped": len(self.skipped),
            "dropped_judgements": self.dropped_judgements,
        }


def evaluate(
    ranker: Ranker,
    labels: LabelSet,
    ks: Sequence[int] = DEFAULT_KS,
    *,
    rerank: bool = False,
    query_records: Mapping[str, TrialRecord] | None = None,
) -> EvaluationResult:
    """Score ``ranker`` on every query of ``labels``.

    Parameters
    ----------
    ranker : Ranker
        An :class:`IndexRanker`, :class:`VectorRanker` or any object with the same
        three methods (the BM25 baseline of ``scripts/evaluate_dev.py``).
    labels : LabelSet
    ks : sequence of int, default (1, 5, 10)
        Cut-offs; positive.
    rerank : bool, default False
        Order only each query's judged candidates (graded labels only).
    query_records : mapping of str to TrialRecord, optional
        Ask with these records instead of the indexed trials (each query's record
        reduced to a thin record, :func:`~recommender.evaluation.regimes.thin_record`);
        the record's own trial is never a result. A query without one counts as not
        in the index.

    Returns
    -------
    EvaluationResult
    """
    ks = _checked_ks(ks)
    if rerank and not labels.graded:
        raise ValueError(
            "re-ranking needs graded judgements with judged non-relevant candidates; "
            "a related list has nothing to re-rank against"
        )
    skipped = [q for q in labels.judgements if not labels.relevant(q)]
    queries = [q for q in labels.judgements if labels.relevant(q)]
    present = [q for q in queries if q in ranker and (query_records is None or q in query_records)]
    if rerank:
        rankings = _rerankings(ranker, labels, present, query_records)
    else:
        rankings = _rankings(ranker, present, ks, query_records)
    per_query = {}
    for query in queries:
        ranking = rankings.get(query, [])  # not in the index: an empty list, all zeros
        per_query[query] = query_metrics(ranking, labels.judgements[query], ks)
    metrics = _means(per_query, ks)
    metrics["coverage"] = len(present) / len(queries) if queries else 0.0
    missing = sorted(set(queries) - set(present))
    mode = "rerank" if rerank else "full"
    return EvaluationResult(mode, metrics, per_query, missing, skipped)


def evaluate_text(
    ranker: Ranker, queries: TextQuerySet, ks: Sequence[int] = DEFAULT_KS
) -> EvaluationResult:
    """Score ``ranker`` on free-text queries, ranked against every indexed trial.

    Judgements of trials not in ``ranker`` are dropped first; a query left without
    a relevant judgement is skipped. Gains are the grades (graded nDCG), unjudged
    results have grade 0.

    Parameters
    ----------
    ranker : Ranker
        Needs ``__contains__`` and ``top_k_text``.
    queries : TextQuerySet
    ks : sequence of int, default (1, 5, 10)
        Cut-offs; positive.

    Returns
    -------
    EvaluationResult
        Mode ``"text"``; ``dropped_judgements`` says how many judgements were dropped.
    """
    ks = _checked_ks(ks)
    judgements, dropped = restrict_to_index(ranker, queries.judgements)
    relevant = {q: any(g > 0 for g in judgements[q].values()) for q in queries.texts}
    evaluated = [q for q, has in relevant.items() if has]
    skipped = [q for q, has in relevant.items() if not has]
    rankings = ranker.top_k_text([queries.texts[q] for q in evaluated], max(ks))
    per_query = {
        query: query_metrics(ranking, judgements[query], ks)
        for query, ranking in zip(evaluated, rankings, strict=True)
    }
    metrics = _means(per_query, ks)
    metrics["coverage"] = 1.0 if per_query else 0.0
    return EvaluationResult("text", metrics, per_query, [], skipped, dropped_judgements=dropped)


def restrict_to_index(
    ranker: Ranker, judgements: Mapping[str, Mapping[str, int]]
) -> tuple[dict[str, dict[str, int]], int]:
    """``judgements`` without the candidates ``ranker`` lacks, and how many went.

    Returns
    -------
    kept : dict of str to dict of str to int
        Every query of ``judgements``, with only its indexed candidates.
    dropped : int
        Judgements (any grade) removed.
    """
    kept = {q: {c: g for c, g in judged.items() if c in ranker} for q, judged in judgements.items()}
    total = sum(len(judged) for judged in judgements.values())
    return kept, total - sum(len(judged) for judged in kept.values())


def _checked_ks(ks: Sequence[int]) -> list[int]:
    ks = sorted(set(ks))
    if not ks or ks[0] < 1:
        raise ValueError(f"cut-offs must be positive integers, got {ks}")
    return ks


def _rankings(
    ranker: Ranker,
    queries: list[str],
    ks: Sequence[int],
    records: Mapping[str, TrialRecord] | None,
) -> dict[str, list[str]]:
    if records is None:
        found = ranker.top_k(queries, max(ks))
    else:
        found = ranker.top_k_records([records[q] for q in queries], max(ks))
    return dict(zip(queries, found, strict=True))


def _rerankings(
    ranker: Ranker,
    labels: LabelSet,
    queries: list[str],
    records: Mapping[str, TrialRecord] | None,
) -> dict[str, list[str]]:
    rankings = {}
    for query in queries:
        candidates = sorted(labels.judgements[query])
        if records is None:
            scores = ranker.score(query, candidates)
        else:
            scores = ranker.score_record(records[query], candidates)
        # Stable sort of id-sorted candidates: ties (and unindexed ones) go by id.
        order = np.argsort(-scores, kind="stable")
        rankings[query] = [candidates[i] for i in order]
    return rankings


def _means(per_query: Mapping[str, Mapping[str, float]], ks: Sequence[int]) -> dict[str, float]:
    names = metric_names(ks)[:-1]
    if not per_query:
        return dict.fromkeys(names, 0.0)
    return {name: float(np.mean([m[name] for m in per_query.values()])) for name in names}


def format_table(result: EvaluationResult, ks: Sequence[int] = DEFAULT_KS) -> str:
    """A plain-text report: counts, then one line per metric family and k."""
    ks = sorted(set(ks))
    lines = [
        f"mode: {result.mode}; queries evaluated: {result.queries:,} "
        f"(not in index: {len(result.not_in_index):,}, "
        f"without a relevant judgement: {len(result.skipped):,})",
        f"{'metric':<10}" + "".join(f"{'@' + str(k):>9}" for k in ks),
    ]
    for family in ("ndcg", "precision", "recall", "hit"):
        values = "".join(f"{result.metrics[f'{family}@{k}']:>9.4f}" for k in ks)
        lines.append(f"{family:<10}{values}")
    lines.append(f"{'mrr@' + str(max(ks)):<10}{result.metrics[f'mrr@{max(ks)}']:>9.4f}")
    lines.append(f"{'coverage':<10}{result.metrics['coverage']:>9.4f}")
    if result.mode == "text" or result.dropped_judgements:
        lines.append(
            f"judgements dropped, their trial not in the index: {result.dropped_judgements:,}"
        )
    return "\n".join(lines)


def parse_ks(text: str) -> tuple[int, ...]:
    """``"1,5,10"`` -> ``(1, 5, 10)``; raises ValueError for anything else."""
    try:
        ks = tuple(sorted({int(part) for part in text.split(",") if part.strip()}))
    except ValueError:
        raise ValueError(f"cut-offs must be comma-separated integers, got {text!r}") from None
    if not ks or ks[0] < 1:
        raise ValueError(f"cut-offs must be positive integers, got {text!r}")
    return ks
