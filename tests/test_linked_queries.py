"""Queries that share relevant trials are resampled and folded together."""

import json

import numpy as np
import pytest

from recommender.evaluation.clusters import linked_folds, linked_queries
from recommender.evaluation.comparison import (
    LabelSetSpec,
    format_quality_table,
    quality_rows,
    spec_linked_queries,
)
from recommender.evaluation.metrics import fold_values, paired_bootstrap, paired_bootstrap_ratio
from recommender.evaluation.runner import EvaluationResult


def test_queries_are_linked_through_each_other_and_through_shared_relevant_trials():
    judgements = {
        "A": {"B": 1},  # sisters: each other's relevant trial
        "B": {"A": 1, "C": 1},
        "D": {"E": 2},  # E is no query: D and F share it
        "F": {"E": 1, "X": 0},
        "G": {},  # no relevant trial: alone
        "H": {"A": 0, "X": 0},  # judged non-relevant links nothing
    }
    assert linked_queries(judgements) == {
        "A": "A",
        "B": "A",
        "D": "D",
        "F": "D",
        "G": "G",
        "H": "H",
    }


def test_a_long_chain_is_one_group_whichever_way_it_points():
    n = 5_000  # each query names the next (or the one before) as its only sister
    forward = {f"q{i:05d}": {f"q{i + 1:05d}": 1} for i in range(n)}
    backward = {f"q{i:05d}": {f"q{i - 1:05d}": 1} for i in range(1, n)}
    assert set(linked_queries(forward).values()) == {"q00000"}
    assert set(linked_queries(backward).values()) == {"q00001"}


def test_folds_keep_each_group_whole_and_cover_every_query_once():
    queries = [f"q{i:02d}" for i in range(40)]
    groups = {q: f"g{int(q[1:]) // 4}" for q in queries}  # ten groups of four
    folds = linked_folds(queries, groups, n_folds=3, seed=1)
    assert sorted(q for fold in folds for q in fold) == queries
    assert len(folds) == 3 and all(fold == sorted(fold) for fold in folds)
    for fold in folds:
        assert all(sum(groups[q] == groups[f] for q in fold) == 4 for f in fold)
    assert sorted(len(fold) for fold in folds) == [12, 12, 16]  # 10 groups dealt 4, 3, 3
    assert linked_folds(queries, groups, n_folds=3, seed=1) == folds  # the seed decides
    alone = linked_folds(queries, n_folds=3, seed=1)
    assert sorted(len(fold) for fold in alone) == [13, 13, 14]


def test_folds_of_few_groups_and_bad_arguments():
    assert linked_folds(["a", "b", "c"], {"a": "a", "b": "a", "c": "a"}) == [["a", "b", "c"]]
    assert linked_folds([]) == []
    with pytest.raises(ValueError, match="n_folds"):
        linked_folds(["a"], n_folds=0)
    with pytest.raises(ValueError, match="no group"):
        linked_folds(["a", "b"], {"a": "a"})


def _values(n, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.2, 0.6, n)
    return base, base * 1.1 + rng.normal(0, 0.1, n)


def _per_query(values, copies=1):
    return {f"q{i:03d}-{c}": {"m": float(v)} for i, v in enumerate(values) for c in range(copies)}


def test_copies_of_a_query_drawn_as_one_group_count_once():
    a, b = _values(40)
    once = paired_bootstrap_ratio(_per_query(a), _per_query(b), "m")
    copied_a, copied_b = _per_query(a, copies=5), _per_query(b, copies=5)
    groups = {q: q.split("-")[0] for q in copied_a}
    grouped = paired_bootstrap_ratio(copied_a, copied_b, "m", linked=groups)
    loose = paired_bootstrap_ratio(copied_a, copied_b, "m")
    np.testing.assert_allclose(grouped, once, rtol=1e-12)
    assert loose[2] - loose[1] < 0.6 * (once[2] - once[1])  # five copies look like 200 queries
    difference = paired_bootstrap(_per_query(a), _per_query(b), "m")
    np.testing.assert_allclose(
        paired_bootstrap(copied_a, copied_b, "m", linked=groups), difference, rtol=1e-12
    )


def test_every_query_alone_is_the_plain_bootstrap():
    a, b = _per_query(_values(30)[0]), _per_query(_values(30)[1])
    alone = {q: q for q in a}
    assert paired_bootstrap_ratio(a, b, "m", linked=alone) == paired_bootstrap_ratio(a, b, "m")
    assert paired_bootstrap(a, b, "m", linked=alone) == paired_bootstrap(a, b, "m")
    assert fold_values(a, b, "m", linked=alone) == fold_values(a, b, "m")


def test_a_group_falls_in_one_fold():
    a = {f"q{i:02d}": {"m": 1.0} for i in range(30)}
    b = {q: {"m": 3.0 if i < 10 else 1.0} for i, q in enumerate(a)}
    groups = {q: "programme" if i < 10 else q for i, q in enumerate(a)}
    folds = fold_values(a, b, "m", linked=groups)
    assert sum(value > 1 for value in folds) == 1 and folds.count(1.0) == len(folds) - 1
    assert sum(value > 1 for value in fold_values(a, b, "m")) > 1  # query by query: spread


def test_a_query_without_a_group_is_an_error():
    a = b = {"q1": {"m": 1.0}, "q2": {"m": 0.5}}
    with pytest.raises(ValueError, match="no group"):
        paired_bootstrap_ratio(a, b, "m", linked={"q1": "q1"})


def test_the_quality_table_draws_linked_queries_together(tmp_path):
    labels = tmp_path / "sisters.json"
    programme = {"NCT00000001": ["NCT00000002"], "NCT00000002": ["NCT00000001"]}
    labels.write_text(json.dumps({**programme, "NCT00000003": ["NCT00000004"]}))
    spec = LabelSetSpec("sisters", labels)
    linked = spec_linked_queries(spec)
    assert linked == {
        "NCT00000001": "NCT00000001",
        "NCT00000002": "NCT00000001",
        "NCT00000003": "NCT00000003",
    }
    assert spec_linked_queries(LabelSetSpec("notes", tmp_path, protocol="text")) is None
    mine = {q: {"ndcg@10": v} for q, v in zip(linked, (0.9, 0.8, 0.5), strict=True)}
    theirs = {q: {"ndcg@10": 0.5} for q in linked}
    results = {
        name: {
            ("sisters", regime): EvaluationResult("full", {"ndcg@10": 0.5}, per, [], [])
            for regime in spec.regimes
        }
        for name, per in (("default", mine), ("plain TF-IDF", theirs), ("BM25 (bm25s)", theirs))
    }
    rows = quality_rows(results, [spec])
    assert [(row.queries, row.groups) for row in rows] == [(3, 2), (3, 2)]
    assert paired_bootstrap_ratio(theirs, mine, "ndcg@10", linked=linked)[1:] == (
        rows[0].low,
        rows[0].high,
    )
    assert "| sisters, full | 3 (2 groups) |" in format_quality_table(rows)
