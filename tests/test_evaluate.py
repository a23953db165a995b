"""Metrics against hand-computed values, the label formats (files and TREC folders), the
runners and the CLI."""

import json
import math

import numpy as np
import pytest
import scipy.sparse as sp

from recommender.cli import EXIT_BAD_INPUT, EXIT_OK, main
from recommender.core import DRAFT_ID, TrialRecord
from recommender.evaluation import (
    IndexRanker,
    LabelFormatError,
    LabelSet,
    TextQuerySet,
    VectorRanker,
    dcg,
    evaluate,
    evaluate_text,
    format_table,
    load_labels,
    load_text_queries,
    paired_bootstrap,
    parse_ks,
    parse_labels,
    query_metrics,
    restrict_to_index,
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


# -- free-text queries: TREC/BEIR label folders ----------------------------------------

HEADER = "query-id\tcorpus-id\tscore"


def write_trec(folder, queries, qrels, *, header=True):
    """A label folder: ``queries`` as JSON lines (str lines as given), ``qrels`` rows."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [q if isinstance(q, str) else json.dumps(q) for q in queries]
    (folder / "queries.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    rows = [r if isinstance(r, str) else "\t".join(map(str, r)) for r in qrels]
    (folder / "qrels.tsv").write_text("\n".join([HEADER] * header + rows) + "\n")
    return folder


def test_text_queries_load(tmp_path):
    folder = write_trec(
        tmp_path / "trec",
        [
            {"_id": "t1", "text": "Boy, 9, with asthma.", "metadata": {}},
            "",  # blank lines are skipped
            {"_id": "t2", "text": "Woman with breast cancer."},
            {"_id": "t3", "text": "No judgement for me."},
        ],
        [("t1", "nct00000001", 2), ("t1", B, 0), ("t2", C, 1), ("gone", D, 2), ("gone", A, 0)],
    )
    queries = load_text_queries(folder)
    assert queries.texts == {
        "t1": "Boy, 9, with asthma.",
        "t2": "Woman with breast cancer.",
        "t3": "No judgement for me.",
    }
    assert queries.judgements == {"t1": {A: 2, B: 0}, "t2": {C: 1}, "t3": {}}
    assert queries.ignored_judgements == 2 and len(queries) == 3


def test_text_queries_header_is_optional(tmp_path):
    folder = write_trec(tmp_path / "t", [{"_id": "q", "text": "x"}], [("q", A, 1)], header=False)
    assert load_text_queries(folder).judgements == {"q": {A: 1}}


GOOD_QUERY = {"_id": "q1", "text": "asthma"}


@pytest.mark.parametrize(
    "queries, qrels, message",
    [
        (["{oops"], [("q1", A, 1)], "queries.jsonl, line 1: not valid JSON"),
        ([GOOD_QUERY, '["q2"]'], [("q1", A, 1)], "line 2: expected a JSON object"),
        ([{"text": "asthma"}], [("q1", A, 1)], '"_id" must be a non-empty string'),
        ([{"_id": 7, "text": "asthma"}], [("q1", A, 1)], '"_id" must be a non-empty string'),
        ([{"_id": "q1"}], [("q1", A, 1)], 'line 1: "text" must be a non-empty string'),
        ([{"_id": "q1", "text": " "}], [("q1", A, 1)], '"text" must be a non-empty string'),
        ([GOOD_QUERY, GOOD_QUERY], [("q1", A, 1)], "line 2: query id 'q1' appears twice"),
        ([""], [("q1", A, 1)], "queries.jsonl: no query"),
        ([GOOD_QUERY], ["q1\tNCT00000001"], "qrels.tsv, line 2: expected 3 tab-separated"),
        ([GOOD_QUERY], ["q1 NCT00000001 1"], "got 1"),
        ([GOOD_QUERY], [("q1", A, 1, 0)], "got 4"),
        ([GOOD_QUERY], [("q1", A, 1), ("q1", B, "high")], "line 3: grade of NCT00000002"),
        ([GOOD_QUERY], [("q1", A, "1.5")], "non-negative integer"),
        ([GOOD_QUERY], [("q1", A, -1)], "non-negative integer"),
        ([GOOD_QUERY], [("q1", "NCT123", 1)], "line 2: 'NCT123' is not an NCT id"),
        ([GOOD_QUERY], [("", A, 1)], "line 2: empty query id"),
        ([GOOD_QUERY], [("q1", A, 1), ("q1", A, 2)], "line 3: query 'q1' judges NCT00000001"),
        ([GOOD_QUERY], [("q9", A, 1), ("q8", B, 1)], "none of its query ids is in queries"),
        ([GOOD_QUERY], [], "qrels.tsv: no judgement"),
    ],
)
def test_malformed_text_queries_say_where(tmp_path, queries, qrels, message):
    folder = write_trec(tmp_path / "trec", queries, qrels)
    with pytest.raises(LabelFormatError, match=message) as caught:
        load_text_queries(folder)
    assert str(folder) in str(caught.value)


@pytest.mark.parametrize("missing", ["queries.jsonl", "qrels.tsv"])
def test_missing_files_of_a_label_folder(tmp_path, missing):
    folder = write_trec(tmp_path / "trec", [GOOD_QUERY], [("q1", A, 1)])
    (folder / missing).unlink()
    with pytest.raises(LabelFormatError, match=f"no {missing}"):
        load_text_queries(folder)


def test_judgements_outside_the_index_are_dropped_and_counted():
    ranker = FixedRanker({A: [], B: []})
    kept, dropped = restrict_to_index(ranker, {"q": {A: 2, X: 1, Y: 0}, "r": {Z: 2}, "s": {}})
    assert kept == {"q": {A: 2}, "r": {}, "s": {}}
    assert dropped == 3


WORDS = {"asthma": 0, "liver": 1, "cancer": 2}


def toy_text_vectorizer(texts):
    """Counts of the three words of :data:`WORDS`: shape (n, 3), dtype float32."""
    rows = np.zeros((len(texts), len(WORDS)), dtype=np.float32)
    for i, text in enumerate(texts):
        for word in text.split():
            if word in WORDS:
                rows[i, WORDS[word]] += 1
    return sp.csr_matrix(rows)


@pytest.fixture
def toy_ranker():
    vectors = np.array([[1, 0, 0], [0.8, 0.6, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float32)
    ids = np.array([A, B, C, D])
    return VectorRanker(ids, sp.csr_matrix(vectors), text_vectorizer=toy_text_vectorizer)


def test_vector_ranker_ranks_text_by_cosine(toy_ranker):
    # "asthma": A 1, B 0.8; "liver liver": C 1, B 0.6; no known word: nothing.
    assert toy_ranker.top_k_text(["asthma", "liver liver", "nothing"], 3) == [[A, B], [C, B], []]
    assert toy_ranker.top_k_text(["asthma"], 1) == [[A]]
    assert toy_ranker.top_k_text([], 3) == []
    with pytest.raises(TypeError, match="text_vectorizer"):
        VectorRanker(toy_ranker.ids, toy_ranker.vectors).top_k_text(["asthma"], 1)


def test_evaluate_text_by_hand(toy_ranker):
    queries = TextQuerySet(
        texts={
            "q1": "asthma",  # ranked A, B
            "q2": "liver",  # ranked C, B
            "q3": "cancer",  # its only judgement is not indexed: skipped
            "q4": "nothing",  # ranked nothing: all zeros
            "q5": "asthma",  # no judgement: skipped
        },
        judgements={
            "q1": {B: 2, A: 0, X: 2},
            "q2": {C: 1, B: 2},
            "q3": {Y: 2},
            "q4": {A: 1},
            "q5": {},
        },
    )
    result = evaluate_text(toy_ranker, queries, ks=(1, 2))
    assert result.mode == "text" and result.queries == 3
    assert result.skipped == ["q3", "q5"] and result.not_in_index == []
    assert result.dropped_judgements == 2  # X of q1, Y of q3
    q1 = (2 / LOG2_3) / 2  # B (grade 2) at rank 2; ideal: B alone (X was dropped)
    q2 = (1 + 2 / LOG2_3) / (2 + 1 / LOG2_3)  # gains are the grades
    assert result.per_query["q1"]["ndcg@2"] == pytest.approx(q1)
    assert result.per_query["q2"]["ndcg@2"] == pytest.approx(q2)
    assert result.per_query["q2"]["ndcg@1"] == pytest.approx(1 / 2)
    assert result.per_query["q4"]["ndcg@2"] == 0
    assert result.metrics["ndcg@2"] == pytest.approx((q1 + q2) / 3)
    assert result.metrics["precision@1"] == pytest.approx(1 / 3)
    assert result.metrics["coverage"] == 1
    out = result.to_json()
    assert out["dropped_judgements"] == 2 and out["skipped"] == 2 and out["mode"] == "text"
    assert "judgements dropped, their trial not in the index: 2" in format_table(result, (1, 2))


def test_the_other_modes_report_no_dropped_judgements():
    result = evaluate(FixedRanker({A: [B]}), parse_labels({A: [B]}), ks=(1,))
    assert result.to_json()["dropped_judgements"] == 0
    assert "dropped" not in format_table(result, (1,))


def test_index_ranker_reads_text_as_the_service_does(tiny_index_path):
    index = TrialIndex.load(tiny_index_path)
    texts = ["a child with asthma uses an inhaler", "early breast cancer, tamoxifen given"]
    rankings = IndexRanker(index).top_k_text(texts, 3)
    for text, ranking in zip(texts, rankings, strict=True):
        vector = index.vectorize(TrialRecord(DRAFT_ID), text=text)
        assert ranking == [n.nct_id for n in index.similar_to_vector(vector, 3)]
    assert rankings[0][0] in {"NCT00000004", "NCT00000005", "NCT00000006"}
    assert rankings[1][0] in {"NCT00000007", "NCT00000008"}


@pytest.fixture
def trec_folder(tmp_path):
    return write_trec(
        tmp_path / "trec",
        [
            {"_id": "asthma", "text": "A child with persistent asthma who uses an inhaler."},
            {"_id": "cancer", "text": "A woman with early breast cancer after surgery."},
        ],
        [
            ("asthma", "NCT00000004", 2),
            ("asthma", "NCT00000005", 1),
            ("asthma", "NCT00000099", 2),  # not in the tiny index: dropped
            ("cancer", "NCT00000007", 2),
            ("cancer", "NCT00000001", 0),
            ("unknown", "NCT00000002", 1),  # not a query: ignored
        ],
    )


def test_cli_evaluate_text_folder(tiny_index_path, trec_folder, capsys):
    args = ["evaluate", "--index", str(tiny_index_path), "--labels", str(trec_folder)]
    assert main([*args, "--k", "1,5"]) == EXIT_OK
    captured = capsys.readouterr()
    assert captured.out.startswith("mode: text; queries evaluated: 2")
    assert "judgements dropped, their trial not in the index: 1" in captured.out
    assert "1 qrels lines of query ids not in queries.jsonl ignored" in captured.err

    assert main([*args, "--k", "1,5", "--json"]) == EXIT_OK
    out = json.loads(capsys.readouterr().out)
    assert out["mode"] == "text" and out["queries"] == 2 and out["dropped_judgements"] == 1
    assert out["metrics"]["hit@5"] == 1  # each topic finds one of its trials
    expected = evaluate_text(
        IndexRanker(TrialIndex.load(tiny_index_path)), load_text_queries(trec_folder), (1, 5)
    )
    assert out == json.loads(json.dumps(expected.to_json()))


def test_cli_text_folder_errors_exit_2(tiny_index_path, trec_folder, capsys):
    args = ["evaluate", "--index", str(tiny_index_path), "--labels", str(trec_folder)]
    assert main([*args, "--rerank"]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "--rerank" in err and "free-text queries" in err and "Traceback" not in err

    (trec_folder / "qrels.tsv").write_text(HEADER + "\nasthma\tNCT00000004\ttwo\n")
    assert main(args) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "qrels.tsv, line 2: grade of NCT00000004" in err and "Traceback" not in err
