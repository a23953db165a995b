"""An indexed thin trial (no condition, no intervention) is asked about as a draft with
its fields would be: searched with its prose reading, everywhere a list of related
trials is given (engine, Python API, HTTP, page, export, evaluation, warm-up)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from fastapi.testclient import TestClient

import recommender
from api.app import create_app
from recommender.evaluation.rankers import IndexRanker
from recommender.index import TrialIndex
from recommender.index.asked import AskedVectors
from recommender.neighbours import NO_NEIGHBOUR
from recommender.pipelines import build_index, export_related
from recommender.text import DEFAULT_FIELD_GROUPS
from tests.factories import TINY_STUDIES, build_tiny_index, study_json, write_studies

# Thin records: titles and summaries only, whose words the rich trials list.
THIN_STUDIES = [
    study_json(
        "NCT00000010",
        "Cell therapy for people whose liver is failing",
        summary="Mesenchymal stem cells for acute-on-chronic liver failure; a registry "
        "of acute liver failure outcomes follows them.",
        status="RECRUITING",
    ),
    study_json(
        "NCT00000011",
        "Inhalers in school children",
        summary="Budesonide and formoterol for asthma; asthma education at school.",
        status="COMPLETED",
    ),
]
THIN = "NCT00000010"
RICH = "NCT00000004"


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    studies = TINY_STUDIES + THIN_STUDIES
    return build_tiny_index(tmp_path_factory.mktemp("thin"), k=5, studies=studies)


@pytest.fixture(scope="module")
def index(folder) -> TrialIndex:
    return TrialIndex.load(folder)


def reading(index: TrialIndex, nct_id: str) -> sp.csr_matrix:
    """The trial's record read as a draft is, straight from the vectoriser."""
    return index.vectorizer.transform_queries([index.record(nct_id)])


def test_only_trials_without_lists_read_their_prose(index):
    thin = {str(i) for p, i in enumerate(index.ids) if index.asked.reads_prose(p)}
    assert thin == {"NCT00000010", "NCT00000011"}
    rich = index.position(RICH)
    assert index.lookup_query(rich).nnz == index.vectors[rich].nnz  # its row, as before


def test_a_thin_trial_is_answered_by_exact_search_with_its_reading(index, monkeypatch):
    pos = index.position(THIN)
    query = reading(index, THIN)
    # Made from its stored row and its prose alone: the same vector, to rounding.
    asked = index.lookup_query(pos)
    np.testing.assert_array_equal(asked.indices, query.indices)
    np.testing.assert_allclose(asked.data, query.data, rtol=1e-6)
    scores = (index.vectors @ query.T).toarray().ravel()
    scores[pos] = 0
    best = np.argsort(-scores, kind="stable")[: np.count_nonzero(scores > 0)]
    found = index.similar(THIN, 5)
    assert [n.position for n in found] == best[:5].tolist()
    assert [n.score for n in found] == pytest.approx(scores[best[:5]].tolist(), rel=1e-5)
    # k at most half the stored list: searched from the list, the same answer.
    index.asked.forget()
    with monkeypatch.context() as patched:
        patched.setattr(index.search, "kneighbors", None)  # the list proves the answer
        assert index.similar(THIN, 2) == found[:2]
    # Its stored list (found with its row) put trial 3, a registry of acute liver
    # failure that lists no intervention, second; trial 2 lists the stem cells and
    # the liver failure its prose names.
    stored = [str(index.ids[p]) for p in index.neighbour_indices[pos][:2]]
    assert stored == ["NCT00000001", "NCT00000003"]
    assert [n.nct_id for n in found[:2]] == ["NCT00000001", "NCT00000002"]


def test_a_thin_trials_answer_is_kept_with_its_reading(folder, monkeypatch):
    index = TrialIndex.load(folder)
    pos = index.position(THIN)
    assert not index.asked.kept(pos)
    first = index.similar(THIN, 3)
    assert index.asked.kept(pos, 3)
    assert not index.asked.kept(pos, 4)  # a longer answer is searched for

    def searched(*args, **kwargs):
        raise AssertionError("a kept answer is not searched again")

    monkeypatch.setattr(index.search, "kneighbors", searched)
    assert index.similar(THIN, 3) == first
    assert index.similar(THIN, 2) == first[:2]
    with pytest.raises(AssertionError, match="not searched"):
        index.similar(THIN, 3, allowed=np.ones(len(index), dtype=bool))  # a filter searches


def test_a_filtered_thin_lookup_searches_with_its_reading(index):
    allowed = np.zeros(len(index), dtype=bool)
    allowed[[index.position("NCT00000002"), index.position("NCT00000003")]] = True
    found = index.similar(THIN, 5, allowed=allowed)
    scores = (index.vectors @ reading(index, THIN).T).toarray().ravel()
    assert [n.nct_id for n in found] == ["NCT00000002", "NCT00000003"]
    assert [n.score for n in found] == pytest.approx(
        [scores[index.position(n.nct_id)] for n in found], rel=1e-5
    )


def test_http_python_api_and_export_give_the_same_list_with_reasons_that_add_up(
    index, folder, tmp_path
):
    client = TestClient(create_app(folder, warm=False))
    served = client.get(f"/similar/{THIN}?k=5").json()["results"]
    engine = index.similar(THIN, 5)
    assert [(r["nct_id"], r["score"]) for r in served] == [
        (n.nct_id, round(n.score, 6)) for n in engine
    ]
    for result in served:
        assert sum(w["score"] for w in result["why"]) == pytest.approx(result["score"], abs=1e-5)
    # The list groups' share is the thin trial's prose meeting the trial's lists.
    assert "conditions" in {w["field"] for w in served[0]["why"]}
    trials = recommender.open_index(folder)
    asked = trials.similar(THIN, k=5, why=True)
    assert [(r.nct_id, round(r.score, 6)) for r in asked] == [
        (r["nct_id"], r["score"]) for r in served
    ]
    assert all(sum(w.score for w in r.why) == pytest.approx(r.score, abs=1e-5) for r in asked)
    export_related(index, tmp_path / "related.csv", k=5, block_rows=4, n_jobs=2)
    export_related(index, tmp_path / "one-thread.csv", k=5, block_rows=4, n_jobs=1)
    assert (tmp_path / "related.csv").read_bytes() == (tmp_path / "one-thread.csv").read_bytes()
    lines = (tmp_path / "related.csv").read_text().splitlines()[1:]
    rows = [line.split(",") for line in lines if line.startswith(THIN)]
    assert [(r[2], np.float32(r[3])) for r in rows] == [
        (n.nct_id, np.float32(n.score)) for n in engine
    ]


def test_the_evaluation_scores_a_thin_query_by_its_reading(index):
    ranker = IndexRanker(index)
    candidates = ["NCT00000001", "NCT00000004", "NCT09999999"]
    scores = ranker.score(THIN, candidates)
    query = reading(index, THIN)
    rows = [index.position(c) for c in candidates[:2]]
    assert scores[:2] == pytest.approx((index.vectors[rows] @ query.T).toarray().ravel())
    assert scores[2] == -np.inf
    assert ranker.top_k([THIN], 3) == [[n.nct_id for n in index.similar(THIN, 3)]]


def test_readings_are_kept_up_to_the_cache_size(index):
    asked = AskedVectors(index.vectors, index.vectorizer, index.records, cached=1)
    first = asked.vector(index.position(THIN))
    assert asked.vector(index.position(THIN)) is first  # kept
    asked.vector(index.position("NCT00000011"))
    assert asked.vector(index.position(THIN)) is not first  # dropped for the other
    together = asked.vectors_of([index.position(i) for i in (RICH, THIN, "NCT00000011")])
    for row, nct_id in enumerate((RICH, THIN, "NCT00000011")):
        assert (together[row] != asked.vector(index.position(nct_id))).nnz == 0


def test_warm_up_asks_about_a_thin_trial_too(folder):
    app = create_app(folder)
    with TestClient(app) as client:
        assert client.get("/ready").status_code == 200
    assert "thin trial's id query" in app.state.warm_up.steps
    assert app.state.warm_up.ok


def test_an_index_whose_groups_read_no_prose_asks_with_rows(tmp_path):
    groups = [replace(g, min_df=1, max_df=1.0, read_when_missing=0) for g in DEFAULT_FIELD_GROUPS]
    source = write_studies(tmp_path / "studies", TINY_STUDIES + THIN_STUDIES)
    index = TrialIndex.load(build_index([source], tmp_path / "index", groups=groups, k=5).path)
    pos = index.position(THIN)
    assert not index.asked.reads_prose(pos)
    found = index.similar(THIN, 5)
    assert [n.position for n in found] == [
        p for p in np.asarray(index.neighbour_indices[pos]).tolist() if p != NO_NEIGHBOUR
    ]


def test_the_lookup_benchmark_times_each_kind_of_trial_against_scipy(folder, capsys):
    from bench.lookup import main

    main(["--index", str(folder), "--lookups", "11", "--k", "2"])
    out = capsys.readouterr().out
    rows = {line.split("  ")[0]: line.split()[-3] for line in out.splitlines()[2:-2]}
    assert rows == {"rich": "9", "thin, first": "2", "thin, kept": "2",
                    "scipy X @ q (baseline)": "2"}  # fmt: skip
    assert out.splitlines()[-2].endswith("exact search: 1.0000")
    # Thin trial 10's stored top 2 were trials 1 and 3; its reading answers 1 and 2.
    kept = float(out.splitlines()[-1].split()[-1])
    assert 0 < kept < 1


def test_a_thin_trial_asked_first_is_answered_off_the_event_loop(folder):
    from api.service import answered_on_the_loop

    app = create_app(folder, warm=False)
    index = app.state.holder.index  # the one served
    assert answered_on_the_loop(index, RICH, 5, {})
    assert not answered_on_the_loop(index, THIN, 5, {})  # its record is read: a thread
    client = TestClient(app)
    first = client.get(f"/similar/{THIN}")
    assert first.status_code == 200
    assert answered_on_the_loop(index, THIN, 5, {})  # its reading is kept now
    assert client.get(f"/similar/{THIN}").content == first.content
    assert answered_on_the_loop(index, "NCT09999999", 5, {})  # a 404 at once
    assert answered_on_the_loop(index, "nct1", 5, {})  # a 422 at once
    assert not answered_on_the_loop(index, RICH, 5, {"status": ["RECRUITING"]})


def test_unit_rows_keep_no_length_so_the_whole_record_is_read_again():
    """An index of unit rows (norm_power 1) cannot rescale a row: it reads the
    record as a draft, and gets the draft's vector exactly."""
    from recommender.core import Intervention, TrialRecord
    from recommender.text import FieldGroupVectorizer

    cells = (Intervention("Stem cells"),)
    records = [
        TrialRecord("NCT00000001", brief_title="Stem cells in liver failure",
                    conditions=("Liver Failure",), interventions=cells),
        TrialRecord("NCT00000002", brief_title="Stem cells for liver failure",
                    conditions=("Liver Failure",), interventions=cells),
        TrialRecord("NCT00000003", brief_title="Liver failure: stem cells in children"),
        TrialRecord("NCT00000004", brief_title="Children with liver failure"),
    ]  # fmt: skip
    for power in (1.0, 0.2):
        vectorizer = FieldGroupVectorizer(norm_power=power, learn_abbreviations=False)
        vectors = vectorizer.fit_transform(records)
        asked = AskedVectors(vectors, vectorizer, records).vector(2)
        expected = vectorizer.transform_queries([records[2]])
        np.testing.assert_array_equal(asked.indices, expected.indices)
        np.testing.assert_allclose(asked.data, expected.data, rtol=1e-6)
        assert asked.nnz > vectors[2].nnz  # its prose also read into the lists
