"""Ranking metrics of one query, and the paired bootstrap that compares two systems.

Metric definitions, per query, averaged over queries (macro average):

* ``precision@k`` = relevant results in the top k / k (k, not the number of
  results returned, is the denominator, as in ``trec_eval``);
* ``recall@k`` = relevant results in the top k / relevant judged trials;
* ``ndcg@k`` = DCG@k / IDCG@k with DCG@k = sum over ranks i <= k of
  grade_i / log2(i + 1) (linear gain; binary labels have gain 1) and IDCG@k the DCG
  of the judged trials sorted by grade, best first;
* ``hit@k`` = 1 if any of the top k is relevant, else 0 (hit rate);
* ``mrr@K`` = 1 / rank of the first relevant result within the top K = max(ks),
  0 if none (reciprocal rank);
* ``coverage`` = share of the evaluated queries whose id is in the index (1 for
  free-text queries, which need no id).

A query with no relevant judgement has no recall or nDCG; it is left out and
counted in ``skipped``. A query that is *not in the index* stays in: every metric
is 0 for it (the user asking about it gets nothing), so coverage lowers the other
numbers instead of flattering them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from recommender.evaluation.clusters import group_units, linked_folds

DEFAULT_KS: tuple[int, ...] = (1, 5, 10)


def dcg(gains: Sequence[float]) -> float:
    """Discounted cumulative gain: ``sum(gains[i] / log2(i + 2))`` over 0-based ranks."""
    gains = np.asarray(gains, dtype=np.float64)
    return float(np.sum(gains / np.log2(np.arange(2, len(gains) + 2))))


def query_metrics(
    ranking: Sequence[str], judged: Mapping[str, int], ks: Sequence[int] = DEFAULT_KS
) -> dict[str, float]:
    """Every metric of one query's ranking.

    Parameters
    ----------
    ranking : sequence of str
        Result ids, best first; only the first ``max(ks)`` are read.
    judged : mapping of str to int
        Grades of the judged candidates; unjudged results have grade 0.
    ks : sequence of int
        Cut-offs.

    Returns
    -------
    dict of str to float
        ``precision@k``, ``recall@k``, ``ndcg@k``, ``hit@k`` per k and ``mrr@K``.

    Raises
    ------
    ValueError
        When ``judged`` has no relevant candidate (recall and nDCG are undefined).
    """
    depth = max(ks)
    grades = np.array([judged.get(r, 0) for r in ranking[:depth]], dtype=np.float64)
    grades = np.pad(grades, (0, depth - len(grades)))  # a short list scores 0 below
    ideal = sorted((g for g in judged.values() if g > 0), reverse=True)
    if not ideal:
        raise ValueError("no relevant judgement: recall and nDCG are undefined")
    relevant = grades > 0
    hits = np.cumsum(relevant)
    out: dict[str, float] = {}
    for k in ks:
        out[f"precision@{k}"] = hits[k - 1] / k
        out[f"recall@{k}"] = hits[k - 1] / len(ideal)
        out[f"ndcg@{k}"] = dcg(grades[:k]) / dcg(ideal[:k])
        out[f"hit@{k}"] = float(hits[k - 1] > 0)
    first = np.flatnonzero(relevant)
    out[f"mrr@{depth}"] = 1.0 / (first[0] + 1) if len(first) else 0.0
    return {name: float(value) for name, value in out.items()}


def metric_names(ks: Sequence[int] = DEFAULT_KS) -> list[str]:
    """Metric keys in report order: each family over every k, then MRR and coverage."""
    names = [f"{m}@{k}" for m in ("ndcg", "precision", "recall", "hit") for k in ks]
    return [*names, f"mrr@{max(ks)}", "coverage"]


def paired_bootstrap(
    a: Mapping[str, Mapping[str, float]],
    b: Mapping[str, Mapping[str, float]],
    metric: str,
    *,
    linked: Mapping[str, str] | None = None,
    n_resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Mean difference ``b - a`` of one metric over shared queries, with a 95% interval.

    Resamples queries with replacement, so a tuning change is kept only when the
    interval says more than query noise.

    Parameters
    ----------
    a, b : mapping of str to mapping of str to float
        Per-query metrics of two systems (``EvaluationResult.per_query``).
    metric : str
    linked : mapping of str to str, optional
        Each query's group (:func:`~recommender.evaluation.clusters.linked_queries`):
        a group is drawn whole, so queries that measure the same trials count once.
        Every query alone by default.
    n_resamples, seed : int

    Returns
    -------
    (mean, low, high) : tuple of float
    """
    va, vb, units = _paired(a, b, metric, linked)
    diff = vb - va
    sums, sizes = _unit_sums(diff, units), np.bincount(units)
    draws = np.random.default_rng(seed).integers(0, len(sizes), (n_resamples, len(sizes)))
    means = sums[draws].sum(axis=1) / sizes[draws].sum(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(diff.mean()), float(low), float(high)


def paired_bootstrap_ratio(
    a: Mapping[str, Mapping[str, float]],
    b: Mapping[str, Mapping[str, float]],
    metric: str,
    *,
    linked: Mapping[str, str] | None = None,
    n_resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Ratio of means ``b / a`` of one metric over shared queries, with a 95% interval.

    The same resampled queries for both systems in each draw (a paired bootstrap), so
    the interval reflects how much the ratio depends on which queries were drawn;
    ``linked`` queries are drawn group by group, as in :func:`paired_bootstrap`.

    Returns
    -------
    (ratio, low, high) : tuple of float
        ``nan`` where ``a``'s mean is 0.
    """
    va, vb, units = _paired(a, b, metric, linked)
    sums_a, sums_b = _unit_sums(va, units), _unit_sums(vb, units)
    draws = np.random.default_rng(seed).integers(0, len(sums_a), (n_resamples, len(sums_a)))
    with np.errstate(divide="ignore", invalid="ignore"):
        # A ratio of means over the same drawn queries is the ratio of their sums.
        ratios = sums_b[draws].sum(axis=1) / sums_a[draws].sum(axis=1)
        ratio = vb.mean() / va.mean()
    low, high = (
        np.nanpercentile(ratios, [2.5, 97.5]) if np.isfinite(ratios).any() else (np.nan,) * 2
    )
    return float(ratio), float(low), float(high)


def _paired(
    a: Mapping[str, Mapping[str, float]],
    b: Mapping[str, Mapping[str, float]],
    metric: str,
    linked: Mapping[str, str] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One metric of the queries both results share, in the same (sorted) order, and
    each one's unit of resampling (an int from 0: its group's, or its own)."""
    shared = sorted(set(a) & set(b))
    if not shared:
        raise ValueError("the two results share no query")
    units = group_units(shared, linked)
    va = np.array([a[q][metric] for q in shared], dtype=np.float64)
    vb = np.array([b[q][metric] for q in shared], dtype=np.float64)
    return va, vb, units


def _unit_sums(values: np.ndarray, units: np.ndarray) -> np.ndarray:
    """Sum of ``values`` per unit, shape (n_units,)."""
    return np.bincount(units, weights=values, minlength=units.max() + 1)


def fold_values(
    a: Mapping[str, Mapping[str, float]],
    b: Mapping[str, Mapping[str, float]],
    metric: str,
    *,
    ratio: bool = True,
    linked: Mapping[str, str] | None = None,
    n_folds: int = 5,
    seed: int = 0,
) -> list[float]:
    """``b / a`` (or ``b - a``) of one metric's means on each of ``n_folds`` disjoint
    folds of the shared queries (:func:`~recommender.evaluation.clusters.linked_folds`
    with ``seed``, ``linked`` queries in one fold): how much a figure moves from one
    part of a label set to another."""
    values = []
    for fold in linked_folds(sorted(set(a) & set(b)), linked, n_folds, seed):
        ma = np.mean([a[q][metric] for q in fold])
        mb = np.mean([b[q][metric] for q in fold])
        values.append(float(mb / ma) if ratio and ma else float(mb - ma) if not ratio else np.nan)
    return values
