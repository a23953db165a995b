"""The default ranking against the plain baselines, on labels the index did not write.

:func:`compare_systems` builds the three systems over the same records (the default
field groups; plain TF-IDF; BM25) and scores each on every label set it is given:
related lists and graded files by full ranking, graded files also by re-ranking their
judged candidates, TREC-layout folders by ranking free text; each trial query both as
indexed and reduced to a thin record (:mod:`~recommender.evaluation.regimes`).
:func:`quality_rows` then gives, per label set and regime, the default's ratio to the
better baseline (its gain, for re-ranking) with a 95% bootstrap interval and its spread
over five folds of the queries, queries that share relevant trials resampled and
folded together (:mod:`~recommender.evaluation.clusters`): the table
``scripts/evaluate_ranking.py`` prints and ``docs/evaluation.md`` shows.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from recommender.core import TrialRecord
from recommender.evaluation.baselines import BM25Ranker, field_group_ranker, tfidf_ranker
from recommender.evaluation.clusters import linked_queries
from recommender.evaluation.labels import load_labels, load_text_queries
from recommender.evaluation.metrics import fold_values, paired_bootstrap, paired_bootstrap_ratio
from recommender.evaluation.rankers import IndexRanker, Ranker
from recommender.evaluation.regimes import REGIMES, thin_record
from recommender.evaluation.runner import EvaluationResult, evaluate, evaluate_text
from recommender.index import TrialIndex

SYSTEMS: dict[str, Callable[[Sequence[TrialRecord]], Ranker]] = {
    "default": lambda records: field_group_ranker(records, n_jobs=-1),
    "plain TF-IDF": tfidf_ranker,
    "BM25 (bm25s)": BM25Ranker,
}
BASELINES = ("plain TF-IDF", "BM25 (bm25s)")


def with_built_index(
    index: TrialIndex, records: Sequence[TrialRecord]
) -> dict[str, Callable[[Sequence[TrialRecord]], Ranker]]:
    """:data:`SYSTEMS` with the default scored as ``index`` answers (its stored lists;
    a thin trial searched with its reading: :class:`IndexRanker`), not as an exact
    search over vectors made in memory.

    Raises
    ------
    ValueError
        ``index`` does not hold exactly the trials of ``records`` (sorted by id).
    """
    if index.ids.tolist() != [r.nct_id for r in records]:
        raise ValueError(
            f"the index at {index.path} holds {len(index):,} trials, not the "
            f"{len(records):,} read: build it from the same sources"
        )
    return {**SYSTEMS, "default": lambda records: IndexRanker(index)}


@dataclass(frozen=True)
class LabelSetSpec:
    """One label set of the quality table.

    Attributes
    ----------
    name : str
    path : Path
        A labels file (related list or graded) or a TREC-layout folder of free text.
    protocol : {"full", "rerank", "text"}
        Rank the whole corpus for a trial, order a trial's judged candidates only, or
        rank the whole corpus for a free text.
    metric : str
        What the table reports (``"ndcg@10"``; ``"ndcg@5"`` for re-ranking).
    target : float
        The default's goal: a ratio to the better baseline, or (re-ranking) a gain.
    """

    name: str
    path: Path
    protocol: str = "full"
    metric: str = "ndcg@10"
    target: float = 1.2

    @property
    def regimes(self) -> tuple[str, ...]:
        """Free text has no record to reduce: it is scored once."""
        return ("text",) if self.protocol == "text" else REGIMES


def shared_label_sets(labels: str | os.PathLike, repo: str | os.PathLike) -> list[LabelSetSpec]:
    """The development label sets: ``labels`` is ``../shared/labels``, ``repo`` this
    repository (for the MeSH regression set in ``data/dev-labels``)."""
    labels, repo = Path(labels), Path(repo)
    return [
        LabelSetSpec("pubmed-sisters-dev", labels / "pubmed-sisters-dev.json"),
        LabelSetSpec("secret-val", labels / "secret-val.json"),
        LabelSetSpec(
            "secret-val, re-ranking",
            labels / "secret-val.graded.json",
            protocol="rerank",
            metric="ndcg@5",
            target=0.03,
        ),
        LabelSetSpec("trec-ct-2021", labels / "trec-ct-2021", protocol="text"),
        LabelSetSpec("mesh-dev (regression)", repo / "data" / "dev-labels" / "mesh-dev.json"),
    ]


def score_label_set(
    ranker: Ranker,
    spec: LabelSetSpec,
    regime: str,
    records: Mapping[str, TrialRecord] | None = None,
) -> EvaluationResult:
    """Evaluate ``ranker`` on one label set in one regime.

    ``records`` (the corpus by NCT id) are needed for the ``"thin"`` regime, which
    asks with each query's record reduced by
    :func:`~recommender.evaluation.regimes.thin_record`.
    """
    ks = (int(spec.metric.split("@")[1]),)
    if spec.protocol == "text":
        return evaluate_text(ranker, load_text_queries(spec.path), ks)
    labels = load_labels(spec.path)
    asked = None
    if regime == "thin":
        if records is None:
            raise ValueError("the thin regime needs the records to reduce")
        asked = {q: thin_record(records[q]) for q in labels.judgements if q in records}
    return evaluate(ranker, labels, ks, rerank=spec.protocol == "rerank", query_records=asked)


def compare_systems(
    records: Sequence[TrialRecord],
    specs: Sequence[LabelSetSpec],
    systems: Mapping[str, Callable[[Sequence[TrialRecord]], Ranker]] = SYSTEMS,
) -> dict[str, dict[tuple[str, str], EvaluationResult]]:
    """``{system: {(label set, regime): result}}``; ``records`` sorted by id, each
    system built once and dropped before the next is built."""
    by_id = {record.nct_id: record for record in records}
    results = {}
    for name, build in systems.items():
        ranker = build(records)
        results[name] = {
            (spec.name, regime): score_label_set(ranker, spec, regime, by_id)
            for spec in specs
            for regime in spec.regimes
        }
        del ranker  # one system's vectors in memory at a time
    return results


@dataclass(frozen=True)
class QualityRow:
    """One line of the quality table: a label set in a regime.

    ``value`` is the default's ratio to the better baseline (``better``), or, for
    re-ranking, its gain over it; ``low``/``high`` the 95% bootstrap interval of that
    value; ``folds`` its values on five disjoint folds of the queries. ``groups``
    counts the independent groups the queries fall into (as many as the queries
    unless some share relevant trials); the interval and the folds draw groups whole.
    """

    label_set: str
    regime: str
    metric: str
    queries: int
    groups: int
    means: dict[str, float]
    better: str
    value: float
    low: float
    high: float
    folds: list[float]
    target: float
    gain: bool

    @property
    def met(self) -> bool:
        return self.value >= self.target


def quality_rows(
    results: Mapping[str, Mapping[tuple[str, str], EvaluationResult]],
    specs: Sequence[LabelSetSpec],
    system: str = "default",
    baselines: Sequence[str] = BASELINES,
) -> list[QualityRow]:
    """The quality table of :func:`compare_systems`' results, label set by label set."""
    rows = []
    for spec in specs:
        linked = spec_linked_queries(spec)
        for regime in spec.regimes:
            key, metric = (spec.name, regime), spec.metric
            means = {name: results[name][key].metrics[metric] for name in (system, *baselines)}
            better = max(baselines, key=lambda name: means[name])
            theirs, mine = results[better][key].per_query, results[system][key].per_query
            gain = spec.protocol == "rerank"
            value, low, high = (paired_bootstrap if gain else paired_bootstrap_ratio)(
                theirs, mine, metric, linked=linked
            )
            folds = fold_values(theirs, mine, metric, ratio=not gain, linked=linked)
            groups = len(mine) if linked is None else len({linked[q] for q in mine})
            facts = (spec.name, regime, metric, len(mine), groups, means, better)
            rows.append(QualityRow(*facts, value, low, high, folds, spec.target, gain))
    return rows


def spec_linked_queries(spec: LabelSetSpec) -> dict[str, str] | None:
    """The groups of a trial-to-trial label set's queries that share relevant trials
    (:func:`~recommender.evaluation.clusters.linked_queries`); None for free text,
    whose patients are independent draws."""
    if spec.protocol == "text":
        return None
    return linked_queries(load_labels(spec.path).judgements)


def format_quality_table(rows: Sequence[QualityRow], system: str = "default") -> str:
    """The rows as a Markdown table (what ``docs/evaluation.md`` shows)."""
    names = list(rows[0].means) if rows else []
    lines = [
        "| label set | queries | metric | " + " | ".join(names) + f" | {system} / better "
        "[95% interval] | on 5 folds | target |",
        "|---|---|---|" + "---|" * len(names) + "---|---|---|",
    ]
    for row in rows:
        values = " | ".join(f"{row.means[name]:.4f}" for name in names)
        if row.gain:
            shown = f"{row.value:+.4f} [{row.low:+.4f}, {row.high:+.4f}]"
            folds = f"{min(row.folds):+.3f} to {max(row.folds):+.3f}"
            target = f"+{row.target:.2f}"
        else:
            shown = f"{row.value:.3f}x [{row.low:.3f}, {row.high:.3f}]"
            folds = f"{min(row.folds):.3f} to {max(row.folds):.3f}"
            target = f"{row.target:.1f}x"
        mark = "met" if row.met else "not met"
        queries = f"{row.queries}"
        if row.groups != row.queries:
            queries += f" ({row.groups} group{'s' if row.groups > 1 else ''})"
        lines.append(
            f"| {row.label_set}, {row.regime} | {queries} | {row.metric} | {values} "
            f"| {shown} vs {row.better} | {folds} | {target}: {mark} |"
        )
    return "\n".join(lines)
