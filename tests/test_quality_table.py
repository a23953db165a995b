"""The quality table: thin records as queries, ratios with intervals, folds."""

import json

import numpy as np
import pytest

from recommender.core import Intervention, TrialRecord
from recommender.evaluation import LabelSet, evaluate
from recommender.evaluation.baselines import BM25Ranker, field_group_ranker, tfidf_ranker
from recommender.evaluation.comparison import (
    LabelSetSpec,
    compare_systems,
    format_quality_table,
    quality_rows,
)
from recommender.evaluation.metrics import fold_values, paired_bootstrap_ratio
from recommender.evaluation.regimes import thin_record
from tests.test_baselines import RECORDS, record

RICH = TrialRecord(
    "NCT00000009",
    brief_title="A trial",
    official_title="The official title",
    acronym="AT",
    brief_summary="Summary.",
    detailed_description="Description.",
    conditions=("Asthma",),
    interventions=(Intervention("Budesonide"),),
    condition_mesh_terms=("Asthma",),
    lead_sponsor="A Sponsor",
    eligibility_criteria="Adults.",
    phases=("PHASE2",),
)


def test_a_thin_record_keeps_titles_summary_and_description_only():
    thin = thin_record(RICH)
    assert thin == TrialRecord(
        "NCT00000009",
        brief_title="A trial",
        official_title="The official title",
        brief_summary="Summary.",
        detailed_description="Description.",
    )


# A corpus in which conditions alone link the query to its relevant trial: with them
# the query finds it, reduced to a thin record it cannot.
LINKED = [
    *RECORDS,
    record(8, "Kappa zeta protocol", conditions=("Wilson disease",)),
    record(9, "Omega sigma programme", conditions=("Wilson disease",)),
    record(10, "Omega theta programme"),
]


@pytest.mark.parametrize("make", [field_group_ranker, tfidf_ranker, BM25Ranker])
def test_every_system_ranks_a_record_asked_with_and_never_returns_its_own_trial(make):
    ranker = make(LINKED)
    full = ranker.top_k(["NCT00000008"], 3)[0]
    asked = ranker.top_k_records([LINKED[7]], 3)[0]
    assert asked[0] == full[0] == "NCT00000009"
    thin = ranker.top_k_records([thin_record(LINKED[7])], 3)[0]
    assert "NCT00000008" not in thin and "NCT00000009" not in thin
    scores = ranker.score_record(LINKED[7], ["NCT00000009", "NCT00000010", "NCT09999999"])
    assert scores[0] > scores[1] and scores[2] == -np.inf


def test_evaluate_asks_with_the_records_given_and_counts_the_others_as_missing():
    ranker = field_group_ranker(LINKED)
    labels = LabelSet({"NCT00000008": {"NCT00000009": 1}, "NCT00000001": {"NCT00000002": 1}}, False)
    full = evaluate(ranker, labels, (1,))
    assert full.per_query["NCT00000008"]["ndcg@1"] == 1.0
    thin = evaluate(ranker, labels, (1,), query_records={"NCT00000008": thin_record(LINKED[7])})
    assert thin.per_query["NCT00000008"]["ndcg@1"] == 0.0
    assert thin.not_in_index == ["NCT00000001"]
    graded = LabelSet({"NCT00000008": {"NCT00000009": 1, "NCT00000010": 0}}, True)
    reranked = evaluate(ranker, graded, (1,), rerank=True, query_records={"NCT00000008": LINKED[7]})
    assert reranked.per_query["NCT00000008"]["ndcg@1"] == 1.0


def per_query(values):
    return {f"q{i}": {"m": float(v)} for i, v in enumerate(values)}


def test_the_ratio_interval_brackets_the_ratio_and_narrows_with_more_queries():
    rng = np.random.default_rng(0)
    base = rng.uniform(0.2, 0.6, 400)
    better = base * 1.3 + rng.normal(0, 0.05, 400)
    few = paired_bootstrap_ratio(per_query(base[:40]), per_query(better[:40]), "m")
    many = paired_bootstrap_ratio(per_query(base), per_query(better), "m")
    for ratio, low, high in (few, many):
        assert low < ratio < high
    assert many[2] - many[1] < few[2] - few[1]
    assert many[1] > 1.2  # a gain of 30% is seen as more than 20% on 400 queries


def test_fold_values_cover_disjoint_folds():
    a, b = per_query([1.0] * 10), per_query([2.0] * 5 + [1.0] * 5)
    ratios = fold_values(a, b, "m")
    assert len(ratios) == 5 and min(ratios) >= 1.0 and max(ratios) <= 2.0
    assert np.mean(ratios) == pytest.approx(1.5)
    assert fold_values(a, b, "m", ratio=False, n_folds=2) != []


def test_the_quality_table_scores_every_set_in_both_regimes(tmp_path):
    related = tmp_path / "related.json"
    related.write_text(json.dumps({"NCT00000008": ["NCT00000009"], "NCT00000004": ["NCT00000005"]}))
    graded = tmp_path / "graded.json"
    graded.write_text(json.dumps({"NCT00000008": {"NCT00000009": 1, "NCT00000010": 0}}))
    trec = tmp_path / "trec"
    trec.mkdir()
    (trec / "queries.jsonl").write_text(json.dumps({"_id": "t1", "text": "Wilson disease"}) + "\n")
    (trec / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\nt1\tNCT00000008\t2\n")
    specs = [
        LabelSetSpec("related", related),
        LabelSetSpec("graded", graded, protocol="rerank", metric="ndcg@5", target=0.03),
        LabelSetSpec("text", trec, protocol="text"),
    ]
    systems = {
        "default": field_group_ranker,
        "plain TF-IDF": tfidf_ranker,
        "BM25 (bm25s)": BM25Ranker,
    }
    results = compare_systems(LINKED, specs, systems)
    rows = quality_rows(results, specs)
    assert [(r.label_set, r.regime) for r in rows] == [
        ("related", "full"),
        ("related", "thin"),
        ("graded", "full"),
        ("graded", "thin"),
        ("text", "text"),
    ]
    related_full, related_thin = rows[0], rows[1]
    assert related_full.means["default"] == 1.0
    assert related_thin.means["default"] < 1.0  # thin, the query loses its condition
    assert rows[2].gain and not rows[0].gain
    table = format_quality_table(rows)
    assert table.count("\n") == len(rows) + 1
    assert "| related, thin |" in table and "+0.03" in table


def test_the_default_can_be_scored_as_a_built_index_answers(tmp_path):
    from recommender.evaluation.comparison import SYSTEMS, with_built_index
    from recommender.evaluation.rankers import IndexRanker
    from recommender.index import TrialIndex
    from tests.factories import build_tiny_index

    index = TrialIndex.load(build_tiny_index(tmp_path))
    records = list(index.records)
    systems = with_built_index(index, records)
    assert isinstance(systems["default"](records), IndexRanker)
    assert systems["BM25 (bm25s)"] is SYSTEMS["BM25 (bm25s)"]
    with pytest.raises(ValueError, match="holds 9 trials, not the 8 read"):
        with_built_index(index, records[:-1])
