"""Metrics against hand-computed values, the label formats, the runner and the CLI."""

import json
import math

import numpy as np
import pytest
import scipy.sparse as sp

from recommender.cli import EXIT_BAD_INPUT, EXIT_OK, main
from recommender.evaluate import (
    IndexRanker,
    LabelFormatError,
    LabelSet,
    VectorRanker,
    dcg,
    evaluate,
    load_labels,
    paired_bootstrap,
    parse_ks,
    parse_labels,
    query_metrics,
)
from recommender.index import TrialIndex
from tests.factories import build_tiny_index

LOG2_3 = math.log2(3)
A, B, C, D = "NCT00000001", "NCT00000002", "NCT00000003", "NCT00000004"
X, Y, Z = "NCT00000011", "NCT00000012", "NCT00000013"


# -- one ranking -----------------------------------------------------------------------


def test_dcg_uses_a_log2_discount():
    assert dcg([3, 2, 1]) == pytest.approx(3 + 2 / LOG2_3 + 1 / 2)
    assert dcg([]) == 0


def test_binary_metrics_by_hand():
    # Relevant: A, B, C. Ranked: X, A, Y, B, Z -> relevant at ranks 2 and 4.
    m = query_metrics([X, A, Y, B, Z], {A: 1, B: 1, C: 1}, ks=(1, 3, 5))
    ideal3 = 1 + 1 / LOG2_3 + 1 / 2  # three relevant: gains 1, 1, 1
    expected = {
        "precision@1": 0, "precision@3": 1 / 3, "precision@5": 2 / 5,
        "recall@1": 0, "recall@3": 1 / 3, "recall@5": 2 / 3,
        "hit@1": 0, "hit@3": 1, "hit@5": 1,
        "ndcg@1": 0,
        "ndcg@3": (1 / LOG2_3) / ideal3,
        "ndcg@5": (1 / LOG2_3 + 1 / math.log2(5)) / ideal3,
        "mrr@5": 1 / 2,
    }  # fmt: skip
    assert m == pytest.approx(expected)
    assert m["ndcg@3"] == pytest.approx(0.296082, abs=1e-6)


def test_graded_metrics_by_hand():
    # Grades: A 2, B 1, C 0 (judged, not relevant), D 1. Ranked: B, C, A.
    m = query_metrics([B, C, A], {A: 2, B: 1, C: 0, D: 1}, ks=(1, 3, 5))
    ideal = [2, 1, 1]
    assert m["ndcg@1"] == pytest.approx(1 / 2)
    assert m["ndcg@3"] == pytest.approx((1 + 2 / 2) / (2 + 1 / LOG2_3 + 1 / 2))
    assert m["ndcg@3"] == pytest.approx(dcg([1, 0, 2]) / dcg(ideal))
    assert m["precision@3"] == pytest.approx(2 / 3)
    assert m["recall@3"] == pytest.approx(2 / 3)  # D was never retrieved
    # A list shorter than k: the missing ranks are misses, k stays the denominator.
    assert m["precision@5"] == pytest.approx(2 / 5)
    assert m["mrr@5"] == 1 and m["hit@1"] == 1


def test_a_query_without_relevant_judgements_has_no_metrics():
    with pytest.raises(ValueError, match="no relevant"):
        query_metrics([A], {B: 0}, ks=(1,))


def test_perfect_ranking_scores_one_everywhere_it_can():
    m = query_metrics([A, B, X], {A: 2, B: 1}, ks=(1, 2))
    assert m["ndcg@1"] == m["ndcg@2"] == m["recall@2"] == m["precision@2"] == 1


# -- label files -----------------------------------------------------------------------


def test_both_label_formats_parse(tmp_path):
    related = tmp_path / "related.json"
    related.write_text(json.dumps({"nct00000001": [B, C, B]}))
    labels = load_labels(related)
    assert not labels.graded
    assert labels.judgements == {A: {B: 1, C: 1}}  # canonical ids, repeats merged

    graded = parse_labels({A: {B: 2, C: 0}, D: {A: 1}})
    assert graded.graded and graded.relevant(A) == {B: 2}


@pytest.mark.parametrize(
    "data, message",
    [
        ([A, B], "non-empty JSON object"),
        ({}, "non-empty JSON object"),
        ({A: [B], C: {D: 1}}, "every query must map"),
        ({A: "NCT00000002"}, "every query must map"),
        ({"NCT1": [B]}, "is not an NCT id"),
        ({A: [B, 7]}, "query NCT00000001: an NCT id must be a string"),
        ({A: {B: -1}}, "non-negative integer"),
        ({A: {B: 1.5}}, "non-negative integer"),
        ({A: {B: True}}, "non-negative integer"),
        ({A: [A, B]}, "lists itself"),
        ({A: [B], "nct00000001": [C]}, "appears twice"),
    ],
)
def test_malformed_labels_say_what_is_wrong(data, message):
    with pytest.raises(LabelFormatError, match=message):
        parse_labels(data)


def test_unreadable_label_files(tmp_path):
    with pytest.raises(LabelFormatError, match="cannot read"):
        load_labels(tmp_path / "absent.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"NCT00000001": [')
    with pytest.raises(LabelFormatError, match="not valid JSON"):
        load_labels(bad)


def test_parse_ks():
    assert parse_ks("10,1,5,5") == (1, 5, 10)
    for text in ("", "0,5", "a", "-1"):
        with pytest.raises(ValueError):
            parse_ks(text)


# -- the runner ------------------------------------------------------------------------


class FixedRanker:
    """Returns given lists and scores; knows only the ids it was given."""

    def __init__(self, lists: dict[str, list[str]], scores: dict[str, float] | None = None):
        self.lists, self.scores = lists, scores or {}

    def __contains__(self, nct_id):
        return nct_id in self.lists

    def top_k(self, queries, k):
        return [self.lists[q][:k] for q in queries]

    def score(self, query, candidates):
        return np.array([self.scores.get(c, -np.inf) for c in candidates])


def test_missing_queries_count_as_misses_and_empty_ones_are_skipped():
    labels = parse_labels({A: [B], C: [D], X: []})
    result = evaluate(FixedRanker({A: [B, D]}), labels, ks=(1, 2))
    assert result.queries == 2  # X has nothing relevant: skipped
    assert result.skipped == [X] and result.not_in_index == [C]
    assert result.metrics["coverage"] == 0.5
    assert result.metrics["precision@1"] == 0.5  # A scores 1, C (not indexed) 0
    assert result.per_query[C]["ndcg@2"] == 0
    out = result.to_json()
    assert out["queries"] == 2 and out["metrics"]["recall@2"] == 0.5


def test_rerank_orders_only_the_judged_candidates():
    labels = parse_labels({A: {B: 0, C: 2, D: 1}})
    ranker = FixedRanker({A: []}, scores={B: 0.9, C: 0.5})  # D is not indexed: last
    result = evaluate(ranker, labels, ks=(1, 3), rerank=True)
    # Order: B (0), C (2), D (1) -> DCG = 2/log2(3) + 1/2, ideal 2 + 1/log2(3).
    assert result.metrics["ndcg@3"] == pytest.approx((2 / LOG2_3 + 1 / 2) / (2 + 1 / LOG2_3))
    assert result.metrics["mrr@3"] == 1 / 2 and result.mode == "rerank"


def test_rerank_refuses_a_related_list():
    with pytest.raises(ValueError, match="graded"):
        evaluate(FixedRanker({A: [B]}), parse_labels({A: [B]}), rerank=True)


def test_vector_ranker_ranks_by_cosine_and_never_returns_the_query():
    vectors = sp.csr_matrix(
        np.array([[1, 0, 0], [0.8, 0.6, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float32)
    )
    ranker = VectorRanker(np.array([A, B, C, D]), vectors)
    assert ranker.top_k([A, C], 3) == [[B], [B]]  # zero-score rows are not results
    np.testing.assert_allclose(ranker.score(A, [B, D, X]), [0.8, 0, -np.inf], rtol=1e-6)
    labels = LabelSet({A: {B: 1, C: 0}}, graded=True)
    assert evaluate(ranker, labels, ks=(1,)).metrics["precision@1"] == 1


def test_paired_bootstrap_brackets_the_mean_difference():
    a = {q: {"m": 0.0} for q in "abcd"}
    b = {"a": {"m": 1.0}, "b": {"m": 1.0}, "c": {"m": 0.0}, "d": {"m": 0.0}}
    mean, low, high = paired_bootstrap(a, b, "m", n_resamples=500)
    assert mean == 0.5 and 0 <= low <= mean <= high <= 1


# -- on a built index, and through the CLI ---------------------------------------------


@pytest.fixture(scope="module")
def tiny_index_path(tmp_path_factory):
    return build_tiny_index(tmp_path_factory.mktemp("tiny"))


def test_index_ranker_uses_the_stored_lists(tiny_index_path):
    index = TrialIndex.load(tiny_index_path)
    labels = parse_labels({"NCT00000007": ["NCT00000008"], "NCT00000004": ["NCT00000005"]})
    result = evaluate(IndexRanker(index), labels, ks=(1, 5))
    assert result.metrics["precision@1"] == 1 and result.metrics["coverage"] == 1


@pytest.fixture
def label_files(tmp_path):
    related = tmp_path / "related.json"
    related.write_text(json.dumps({"NCT00000001": ["NCT00000002"], "NCT00000099": [A]}))
    graded = tmp_path / "graded.json"
    graded.write_text(json.dumps({"NCT00000004": {"NCT00000005": 2, "NCT00000008": 0}}))
    return related, graded


def test_cli_evaluate_json(tiny_index_path, label_files, capsys):
    related, graded = label_files
    args = ["evaluate", "--index", str(tiny_index_path), "--labels", str(related)]
    assert main([*args, "--k", "1,5", "--json"]) == EXIT_OK
    out = json.loads(capsys.readouterr().out)
    assert out["queries"] == 2 and out["not_in_index"] == 1
    assert out["metrics"]["coverage"] == 0.5 and out["metrics"]["precision@1"] == 0.5
    assert set(out["metrics"]) >= {"ndcg@5", "recall@5", "hit@1", "mrr@5"}

    args = ["evaluate", "--index", str(tiny_index_path), "--labels", str(graded), "--rerank"]
    assert main(args) == EXIT_OK
    table = capsys.readouterr().out
    assert table.startswith("mode: rerank; queries evaluated: 1") and "ndcg" in table


@pytest.mark.parametrize(
    "content, extra, message",
    [
        ("[1, 2]", [], "non-empty JSON object"),
        ("{oops", [], "not valid JSON"),
        ('{"NCT00000001": ["NCT00000002"]}', ["--rerank"], "needs graded judgements"),
        ('{"NCT00000001": ["NCT00000002"]}', ["--k", "0"], "positive integers"),
    ],
)
def test_cli_bad_labels_exit_2(tiny_index_path, tmp_path, capsys, content, extra, message):
    path = tmp_path / "labels.json"
    path.write_text(content)
    code = main(["evaluate", "--index", str(tiny_index_path), "--labels", str(path), *extra])
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT
    assert message in err and "Traceback" not in err
