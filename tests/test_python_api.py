"""The Python API (``import recommender``): the engine's answers, with what a person
reads, the same as the REST API's and within the same limits."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import recommender
from api.app import create_app
from recommender.core import DEFAULT_RESULTS, EMPTY_QUERY, MAX_TEXT_CHARS, NO_KNOWN_WORD
from recommender.index import TrialIndex
from tests.test_api import shared_tiny_index


@pytest.fixture(scope="module")
def tiny_index(tmp_path_factory) -> Path:
    return shared_tiny_index(tmp_path_factory)


@pytest.fixture(scope="module")
def trials(tiny_index) -> recommender.Recommender:
    return recommender.open_index(tiny_index)


@pytest.fixture(scope="module")
def client(tiny_index) -> TestClient:
    return TestClient(create_app(tiny_index, warm=False))


def served(client: TestClient, response) -> list[tuple[str, float]]:
    return [(r["nct_id"], r["score"]) for r in response.json()["results"]]


def pairs(results) -> list[tuple[str, float]]:
    return [(r.nct_id, round(r.score, 6)) for r in results]


# -- what it answers -------------------------------------------------------------------


def test_like_a_trial_is_the_engine_ranking_with_what_a_person_reads(trials, tiny_index):
    results = trials.similar("NCT00000004", k=2)
    engine = TrialIndex.load(tiny_index).similar("NCT00000004", 2)
    assert [(r.rank, r.nct_id, r.score) for r in results] == [
        (n.rank, n.nct_id, n.score) for n in engine
    ]
    first = results[0]
    assert first.nct_id == "NCT00000005" and results.query == "NCT00000004"
    assert first.title == "Budesonide and formoterol in adult asthma" and not first.title_made
    assert first.conditions == ("Asthma",) and first.interventions == ("Budesonide", "Formoterol")
    assert (first.status, first.phases, first.study_type) == (
        "RECRUITING", ("PHASE3",), "INTERVENTIONAL",
    )  # fmt: skip
    assert first.why is None  # only on request
    assert results.title == "Inhaled corticosteroids for childhood asthma"
    assert results.nct_ids == ["NCT00000005", "NCT00000006"]


def test_the_default_k_is_the_service_default():
    # As in the CLI, the JSON API and the page (tests/test_api_ops.py): not TrialIndex's 5.
    for method in ("similar", "similar_to_text", "similar_to_draft"):
        k = inspect.signature(getattr(recommender.Recommender, method)).parameters["k"]
        assert k.default == DEFAULT_RESULTS


def test_why_gives_the_shares_that_add_up_to_the_score(trials):
    for result in trials.similar("NCT00000004", why=True):
        assert result.why and sum(w.score for w in result.why) == pytest.approx(result.score)
        assert all(w.terms for w in result.why)
    assert "conditions" in {w.field for w in trials.similar("NCT00000004", why=True)[0].why}


def test_results_equal_the_rest_api(trials, client):
    assert pairs(trials.similar("NCT00000001", k=3)) == served(
        client, client.get("/similar/NCT00000001?k=3")
    )
    text = "budesonide inhaler for asthma"
    assert pairs(trials.similar_to_text(text, k=3, status="RECRUITING")) == served(
        client, client.post("/similar", json={"text": text, "k": 3, "status": ["RECRUITING"]})
    )
    draft = {"title": "Budesonide for adults", "conditions": ["Asthma"], "interventions": ["X"]}
    assert pairs(trials.similar_to_draft(**draft, k=4)) == served(
        client, client.post("/similar", json={**draft, "k": 4})
    )


def test_a_draft_without_lists_meets_the_trials_that_list_its_words(trials, client):
    # "Formoterol" is only in trial 5's title and intervention list: a draft that
    # names it in its summary meets both, and says so.
    found = trials.similar_to_draft(summary="formoterol in adults", k=1, why=True)
    assert found[0].nct_id == "NCT00000005"
    shares = {w.field: w for w in found[0].why}
    assert "formoterol" in shares["interventions"].terms
    assert sum(w.score for w in found[0].why) == pytest.approx(found[0].score)
    asked = client.post("/similar", json={"summary": "formoterol in adults", "k": 1})
    assert served(client, asked) == pairs(found)
    # A draft that lists a condition is read as it is: no intervention share from prose.
    listed = trials.similar_to_draft(summary="formoterol", conditions=["Asthma"], why=True)
    assert "formoterol" not in {t for w in listed[0].why if w.field == "interventions"
                                for t in w.terms}  # fmt: skip


def test_filters_are_keyword_arguments_one_value_or_several(trials):
    recruiting = trials.similar("NCT00000004", status="RECRUITING")
    assert {r.status for r in recruiting} == {"RECRUITING"}
    either = trials.similar("NCT00000001", status=["RECRUITING", "completed"], k=5)
    assert {r.status for r in either} == {"RECRUITING", "COMPLETED"}
    phase2 = trials.similar_to_text("stem cells liver failure", phase="phase 2")
    assert phase2.nct_ids and all("PHASE2" in r.phases for r in phase2)
    observational = trials.similar("NCT00000001", study_type="observational")
    assert observational.nct_ids == ["NCT00000003"]
    assert trials.similar("NCT00000004", status="not yet recruiting").nct_ids == []


def test_a_draft_text_and_fields_together(trials):
    results = trials.similar_to_draft(conditions=["Breast Cancer"], text="tamoxifen", k=2)
    assert set(results.nct_ids) == {"NCT00000007", "NCT00000008"}
    assert (results.query, results.title, results.title_made) == (None, "tamoxifen", True)


# -- refusals: the same limits and messages as the command line and the REST API --------


@pytest.mark.parametrize(
    ("ask", "error", "says"),
    [
        (lambda t: t.similar("NCT123"), recommender.InvalidNctIdError, "is not an NCT id"),
        (lambda t: t.similar("NCT09999999"), recommender.NotInIndexError, "not in this index"),
        (lambda t: t.similar("NCT00000001", k=0), recommender.QueryError, "1 to 100, got 0"),
        (lambda t: t.similar("NCT00000001", k=101), recommender.QueryError, "1 to 100"),
        (lambda t: t.similar("NCT00000001", k=2.5), recommender.QueryError, "whole number"),
        (lambda t: t.similar_to_text("  \n"), recommender.EmptyQueryError, EMPTY_QUERY),
        (lambda t: t.similar_to_draft(), recommender.EmptyQueryError, EMPTY_QUERY),
        (
            lambda t: t.similar_to_text("zebra xylophone"),
            recommender.EmptyQueryError,
            NO_KNOWN_WORD,
        ),
        (
            lambda t: t.similar_to_text("asthma " * MAX_TEXT_CHARS),
            recommender.QueryError,
            "at most 20,000 are read",
        ),
        (
            lambda t: t.similar_to_draft(conditions="Asthma"),
            recommender.QueryError,
            "must be a list",
        ),
        (
            lambda t: t.similar("NCT00000001", status="DONE"),
            recommender.UnknownFacetValueError,
            "unknown status 'DONE'",
        ),
    ],
)
def test_refusals_name_the_problem(trials, ask, error, says):
    with pytest.raises(error) as caught:
        ask(trials)
    assert says in str(caught.value)


def test_a_text_of_the_limit_is_read(trials):
    text = ("asthma " * MAX_TEXT_CHARS)[:MAX_TEXT_CHARS]
    assert trials.similar_to_text(text, k=1).nct_ids


# -- conversions ---------------------------------------------------------------------------


def test_results_as_dicts_and_text(trials):
    results = trials.similar("NCT00000004", k=1, why=True)
    row = results.to_dicts()[0]
    assert row["nct_id"] == "NCT00000005" and row["why"][0]["field"]
    assert "NCT00000005" in repr(results) and "Budesonide and formoterol" in repr(results)
    assert "trials" in repr(trials) and len(trials) == 9 and "NCT00000001" in trials


def test_results_to_pandas(trials):
    pytest.importorskip("pandas")
    frame = trials.similar("NCT00000004", k=2, why=True).to_pandas()
    assert list(frame["nct_id"]) == ["NCT00000005", "NCT00000006"]
    assert list(frame.columns[:5]) == ["rank", "nct_id", "title", "title_made", "score"]
    assert frame.loc[0, "conditions"] == "Asthma" and frame.loc[0, "phases"] == "PHASE3"
    assert frame.loc[0, "why"].startswith(("conditions", "interventions", "text", "titles"))
    assert frame.attrs["query"] == "NCT00000004"
    empty = trials.similar("NCT00000004", status="NOT_YET_RECRUITING").to_pandas()
    assert len(empty) == 0 and "nct_id" in empty.columns


def test_to_pandas_without_pandas_says_what_to_install(trials, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas then fails
    with pytest.raises(ImportError, match=r"trial-recommender\[pandas\]"):
        trials.similar("NCT00000004").to_pandas()


# -- the package ---------------------------------------------------------------------------


def test_the_package_re_exports_lazily():
    probe = (
        "import sys, recommender.core; "
        "print(sorted(m for m in ('recommender.search', 'recommender.index', 'numba', 'scipy') "
        "if m in sys.modules)); "
        "import recommender; recommender.open_index; print('recommender.search' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.split("\n")
    assert out[0] == "[]" and out[1] == "True"


def test_every_public_name_resolves_and_is_listed():
    for name in recommender.__all__:
        assert getattr(recommender, name) is not None
        assert name in dir(recommender)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        recommender.nope  # noqa: B018


def test_version_is_the_installed_one():
    from importlib.metadata import version

    assert recommender.__version__ == version("trial-recommender")
