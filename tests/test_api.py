"""The REST contract, in process, with FastAPI's TestClient over the tiny index."""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import ADMIN_TOKEN_ENV, INDEX_ENV, WATCH_ENV
from recommender.core import DEFAULT_RESULTS
from recommender.index import DamagedIndexError, Staging, TrialIndex
from tests.factories import build_tiny_index

TOKEN = "test-admin-token"
RESULT_KEYS = {
    "rank", "nct_id", "title", "title_made", "score", "conditions", "interventions", "phases",
    "status", "why",
}  # fmt: skip


def shared_tiny_index(tmp_path_factory: pytest.TempPathFactory, k: int = 5) -> Path:
    """The tiny index with ``k`` stored neighbours, built once per test session.

    Shared by the API test modules through the session's base temp folder, since a
    fixture outside conftest.py is only seen by its own module.
    """
    folder = tmp_path_factory.getbasetemp() / f"api-tiny-index-k{k}"
    if not (folder / "index" / "meta.json").exists():
        build_tiny_index(folder, k=k)
    return folder / "index"


@pytest.fixture(scope="session")
def tiny_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_tiny_index(tmp_path_factory)


@pytest.fixture(scope="session")
def client(tiny_index: Path) -> TestClient:
    return TestClient(create_app(tiny_index, reload_token=TOKEN))


@pytest.fixture(scope="session")
def short_list_client(tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    """An index storing one neighbour per trial: filters force the exact fallback."""
    return TestClient(create_app(shared_tiny_index(tmp_path_factory, k=1)))


@pytest.fixture
def own_index(tiny_index: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny index, for tests that rebuild or damage it."""
    return Path(shutil.copytree(tiny_index, tmp_path / "index"))


def exact_ranking(index: TrialIndex, nct_id: str, mask: np.ndarray | None, k: int) -> list[str]:
    """Brute-force answer: cosine against every allowed trial, positive scores only."""
    pos = index.position(nct_id)
    scores = (index.vectors @ index.vectors[pos].T).toarray().ravel()
    allowed = np.ones(len(index), bool) if mask is None else mask.copy()
    allowed[pos] = False
    order = [i for i in np.argsort(-scores, kind="stable") if allowed[i] and scores[i] > 0]
    return [str(index.ids[i]) for i in order[:k]]


def ids(response) -> list[str]:
    return [r["nct_id"] for r in response.json()["results"]]


# -- GET /similar/{nct_id} -------------------------------------------------------------


def test_similar_has_the_contract_shape(client: TestClient, tiny_index: Path) -> None:
    response = client.get("/similar/NCT00000001", params={"k": 2})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"nct_id", "title", "title_made", "results", "index"}
    assert body["nct_id"] == "NCT00000001"
    assert body["title"] == "Mesenchymal stem cells for acute-on-chronic liver failure"
    index = TrialIndex.load(tiny_index)
    assert body["index"] == {"built_at": index.built_at, "studies": 9}
    first = body["results"][0]
    assert set(first) == RESULT_KEYS
    assert first == first | {
        "rank": 1,
        "nct_id": "NCT00000002",
        "title": "Umbilical cord stem cells in liver failure",
        "conditions": ["Liver Failure, Acute on Chronic"],
        "interventions": ["Umbilical cord mesenchymal stem cells"],
        "phases": ["PHASE2"],
        "status": "COMPLETED",
    }
    assert [r["rank"] for r in body["results"]] == [1, 2]
    assert 0 < body["results"][1]["score"] <= first["score"] <= 1


def test_similar_k_caps_the_list(client: TestClient) -> None:
    # NCT00000001 has only two trials sharing any term; a k of 1 cuts that to one.
    assert ids(client.get("/similar/NCT00000001")) == ["NCT00000002", "NCT00000003"]
    assert ids(client.get("/similar/NCT00000001?k=1")) == ["NCT00000002"]
    assert len(ids(client.get("/similar/NCT00000004?k=100"))) == 2


@pytest.mark.parametrize("number", range(1, 10))
def test_similar_never_returns_the_query_trial(client: TestClient, number: int) -> None:
    nct_id = f"NCT{number:08d}"
    response = client.get(f"/similar/{nct_id}", params={"k": 100})
    assert response.status_code == 200
    assert nct_id not in ids(response)


def test_similar_forgives_case_and_spaces(client: TestClient) -> None:
    response = client.get("/similar/%20nct00000007%20")
    assert response.status_code == 200
    assert response.json()["nct_id"] == "NCT00000007"
    assert ids(response) == ["NCT00000008"]


def test_why_names_the_shared_terms_and_adds_up_to_the_score(client: TestClient) -> None:
    result = client.get("/similar/NCT00000001?k=1").json()["results"][0]
    fields = [w["field"] for w in result["why"]]
    scores = [w["score"] for w in result["why"]]
    assert scores == sorted(scores, reverse=True)  # the strongest part comes first
    assert {"conditions", "interventions", "titles", "text", "sponsor"} >= set(fields)
    conditions = result["why"][fields.index("conditions")]
    assert "acute on chronic" in conditions["terms"]
    assert all(1 <= len(w["terms"]) <= 3 for w in result["why"])
    assert sum(w["score"] for w in result["why"]) == pytest.approx(result["score"], abs=1e-4)


@pytest.mark.parametrize(
    ("nct_id", "params"),
    [
        ("NCT00000004", {"status": ["WITHDRAWN"]}),
        ("NCT00000004", {"status": ["WITHDRAWN", "RECRUITING"], "k": 5}),
        ("NCT00000001", {"study_type": ["OBSERVATIONAL"]}),
        ("NCT00000001", {"phase": ["PHASE1", "PHASE2"]}),
        ("NCT00000002", {"status": ["RECRUITING"], "phase": ["PHASE1"]}),
        ("NCT00000007", {"status": ["SUSPENDED"]}),
    ],
)
def test_filters_apply_before_ranking(
    short_list_client: TestClient, nct_id: str, params: dict
) -> None:
    # With one stored neighbour per trial, any filter that drops it must fall back
    # to an exact search among the allowed trials, not return a short list.
    index = short_list_client.app.state.holder.index
    k = params.get("k", DEFAULT_RESULTS)
    filters = {f: params[f] for f in ("status", "phase", "study_type") if f in params}
    expected = exact_ranking(index, nct_id, index.facets.allowed(filters), k)
    response = short_list_client.get(f"/similar/{nct_id}", params=params)
    assert response.status_code == 200
    assert ids(response) == expected


def test_filtered_results_match_the_filter(client: TestClient) -> None:
    response = client.get("/similar/NCT00000004?status=WITHDRAWN")
    assert ids(response) == ["NCT00000006"]
    response = client.get("/similar/NCT00000002?phase=PHASE1&phase=PHASE3")
    assert [r["phases"] for r in response.json()["results"]] == [["PHASE1", "PHASE2"]]
    response = client.get("/similar/NCT00000002?study_type=OBSERVATIONAL")
    assert ids(response) == ["NCT00000003"]


# -- errors ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/similar/NCT123", "/similar/12345678", "/trials/NCTABCDEFGH"])
def test_malformed_id_is_a_422_saying_so(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 422
    assert "is not an NCT id (expected 'NCT' and 8 digits)" in response.json()["detail"]


@pytest.mark.parametrize("k", ["0", "101", "-3", "five", "2.5", ""])
def test_bad_k_is_a_422_naming_k(client: TestClient, k: str) -> None:
    response = client.get(f"/similar/NCT00000001?k={k}")
    assert response.status_code == 422
    body = response.json()
    assert "query parameter k" in body["detail"]
    assert body["errors"][0]["loc"] == ["query", "k"]


@pytest.mark.parametrize(
    "query",
    ["status=DONE", "phase=PHASE9", "study_type=interventional", "status=RECRUITING&phase="],
)
def test_bad_filter_value_is_a_422(client: TestClient, query: str) -> None:
    response = client.get(f"/similar/NCT00000001?{query}")
    assert response.status_code == 422
    assert "Input should be" in response.json()["detail"]


def test_unknown_trial_is_a_404_saying_which_index(client: TestClient) -> None:
    index = client.app.state.holder.index
    for path in ("/similar/NCT09999999", "/trials/NCT09999999"):
        response = client.get(path)
        assert response.status_code == 404
        assert response.json() == {
            "detail": f"NCT09999999 is not in this index (built from 9 studies on "
            f"{index.built_at[:10]})"
        }


def test_unknown_route_is_a_json_404(client: TestClient) -> None:
    response = client.get("/nothing/here")
    assert response.status_code == 404
    assert "detail" in response.json()


def test_oversized_body_is_a_413(client: TestClient) -> None:
    big = {"text": "asthma " * 12_000}  # about 84 KB, over the 64 KiB limit
    response = client.post("/similar", json=big)
    assert response.status_code == 413
    assert "larger than the limit of 65,536 bytes" in response.json()["detail"]


def test_oversized_streamed_body_without_length_is_a_413(client: TestClient) -> None:
    def chunks():  # chunked transfer: no Content-Length to check up front
        yield b'{"text": "'
        for _ in range(80):
            yield b"asthma " * 150
        yield b'"}'

    response = client.post(
        "/similar", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert "detail" in response.json()


def test_body_under_the_limit_is_served(client: TestClient) -> None:
    long = "asthma " * 2_800  # under the 20,000 characters a text field may hold
    body = {"text": long, "summary": long, "description": long}  # about 59 KB in all
    response = client.post("/similar", json=body)
    assert response.status_code == 200


# -- POST /similar ---------------------------------------------------------------------


def test_post_text_ranks_the_matching_cluster(client: TestClient) -> None:
    text = "mesenchymal stem cells for patients with liver failure"
    response = client.post("/similar", json={"text": text, "k": 3})
    assert response.status_code == 200
    body = response.json()
    assert body["nct_id"] is None
    assert body["title"] == text
    assert set(ids(response)) == {"NCT00000001", "NCT00000002", "NCT00000003"}
    assert all(set(r) == RESULT_KEYS and r["why"] for r in body["results"])


def test_post_text_is_read_in_the_free_text_groups(client: TestClient) -> None:
    """A text meets the trials' condition and intervention names through the whole-text
    group, which reads them too, not through the list groups' phrases."""
    response = client.post("/similar", json={"text": "budesonide for asthma", "k": 2})
    assert set(ids(response)) == {"NCT00000004", "NCT00000005"}  # both give budesonide
    why = response.json()["results"][0]["why"]
    assert {w["field"] for w in why} <= {"titles", "text", "eligibility"}
    text_terms = next(w["terms"] for w in why if w["field"] == "text")
    assert "budesonide" in text_terms


def test_post_partial_trial_uses_its_fields(client: TestClient) -> None:
    trial = {
        "title": "Budesonide for asthma in adults",
        "conditions": ["Asthma"],
        "interventions": ["Budesonide"],
        "summary": "Inhaled budesonide in adults with asthma.",
    }
    response = client.post("/similar", json=trial)
    assert response.status_code == 200
    body = response.json()
    assert body["title"] == "Budesonide for asthma in adults"
    assert ids(response)[:2] == ["NCT00000005", "NCT00000004"]  # both give budesonide
    why_fields = {w["field"] for w in body["results"][0]["why"]}
    assert {"conditions", "interventions"} <= why_fields


def test_post_filters_and_k(client: TestClient) -> None:
    query = {"conditions": ["Asthma"], "k": 1, "status": ["WITHDRAWN"]}
    response = client.post("/similar", json=query)
    assert ids(response) == ["NCT00000006"]


def test_post_long_text_gets_a_short_title(client: TestClient) -> None:
    text = "asthma " * 50
    title = client.post("/similar", json={"text": text}).json()["title"]
    assert len(title) <= 120 and title.endswith("\u2026")


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"text": "zebra quantum xylophone"}, "none of the words"),
        ({}, "the query is empty: give a few words"),
        ({"text": "   ", "conditions": []}, "the query is empty"),
        ({"text": "\n", "conditions": [" "], "title": "\t"}, "the query is empty"),
        ({"text": "asthma", "k": 0}, "body field k"),
        ({"text": "asthma", "status": ["DONE"]}, "body field status.0"),
        ({"text": "asthma", "colour": "red"}, "body field colour"),
        ({"conditions": "Asthma"}, "body field conditions"),
    ],
)
def test_post_bad_query_is_a_422(client: TestClient, body: dict, says: str) -> None:
    response = client.post("/similar", json=body)
    assert response.status_code == 422
    assert says in response.json()["detail"]


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", b'"text"', b""])
def test_post_malformed_json_is_a_422(client: TestClient, content: bytes) -> None:
    response = client.post(
        "/similar", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert isinstance(response.json()["detail"], str)


def test_post_without_json_content_type_says_so(client: TestClient) -> None:
    response = client.post(
        "/similar",
        content=b'{"text": "asthma"}',
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 422
    assert "Content-Type: application/json" in response.json()["detail"]


# -- other endpoints -------------------------------------------------------------------


def test_trial_returns_the_stored_record(client: TestClient) -> None:
    index = client.app.state.holder.index
    response = client.get("/trials/NCT00000005")
    assert response.status_code == 200
    assert response.json() == json.loads(json.dumps(index.record("NCT00000005").to_dict()))
    assert response.json()["interventions"][1] == {
        "name": "Formoterol", "type": "DRUG", "other_names": [], "description": "",
    }  # fmt: skip


def test_health(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}


def test_ready_describes_the_index(tiny_index: Path) -> None:
    with TestClient(create_app(tiny_index)) as client:  # runs the lifespan: warmed up
        body = client.get("/ready").json()
    assert body["ready"] is True
    assert body["studies"] == 9
    assert body["built_at"] == TrialIndex.load(tiny_index).built_at
    assert body["path"] == str(tiny_index.resolve())
    assert body["bytes_on_disk"] == sum(p.stat().st_size for p in tiny_index.iterdir())
    assert body["last_reload_error"] is None


def test_docs_and_openapi(client: TestClient) -> None:
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    schema = client.get("/openapi.json").json()
    assert {"/similar/{nct_id}", "/similar", "/trials/{nct_id}", "/health", "/ready"} <= set(
        schema["paths"]
    )
    assert "/admin/reload" in schema["paths"]


# -- loading and reloading -------------------------------------------------------------


def test_index_is_loaded_once_per_app(tiny_index: Path, monkeypatch) -> None:
    loads = []
    original = TrialIndex.load.__func__

    def counting_load(cls, folder, **kwargs):
        loads.append(folder)
        return original(cls, folder, **kwargs)

    monkeypatch.setattr(TrialIndex, "load", classmethod(counting_load))
    app_client = TestClient(create_app(tiny_index))
    for _ in range(5):
        app_client.get("/similar/NCT00000001")
        app_client.post("/similar", json={"text": "asthma"})
    assert len(loads) == 1


def test_index_path_comes_from_the_environment(tiny_index: Path, monkeypatch) -> None:
    monkeypatch.setenv(INDEX_ENV, str(tiny_index))
    assert TestClient(create_app()).get("/ready").json()["path"] == str(tiny_index.resolve())


def test_no_index_fails_at_startup(tmp_path: Path) -> None:
    with pytest.raises(DamagedIndexError, match="no index at"):
        create_app(tmp_path / "missing")


def test_reload_is_off_without_a_token(tiny_index: Path, monkeypatch) -> None:
    monkeypatch.delenv(ADMIN_TOKEN_ENV, raising=False)
    response = TestClient(create_app(tiny_index)).post("/admin/reload")
    assert response.status_code == 404
    assert ADMIN_TOKEN_ENV in response.json()["detail"]


def test_reload_token_from_the_environment(tiny_index: Path, monkeypatch) -> None:
    monkeypatch.setenv(ADMIN_TOKEN_ENV, "from-env")
    app_client = TestClient(create_app(tiny_index))
    headers = {"Authorization": "Bearer from-env"}
    assert app_client.post("/admin/reload", headers=headers).status_code == 200


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, 401),
        ({"Authorization": "Bearer wrong"}, 403),
        ({"Authorization": f"Bearer {TOKEN}x"}, 403),
    ],
)
def test_reload_refuses_without_the_right_token(
    client: TestClient, headers: dict, status: int
) -> None:
    serving = client.app.state.holder.index
    response = client.post("/admin/reload", headers=headers)
    assert response.status_code == status
    assert response.json()["detail"]
    assert client.app.state.holder.index is serving


def test_reload_swaps_in_a_new_build(own_index: Path, tmp_path: Path) -> None:
    app_client = TestClient(create_app(own_index, reload_token=TOKEN))
    holder = app_client.app.state.holder
    in_flight = holder.index  # what a request that started before the reload holds
    _rebuild(own_index, tmp_path)
    response = app_client.post("/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert response.json() | {"reloaded": True, "studies": 9} == response.json()
    assert holder.index is not in_flight
    # The old object still answers, although its files were replaced on disk.
    assert [n.nct_id for n in in_flight.similar("NCT00000001", 2)] == [
        "NCT00000002", "NCT00000003",
    ]  # fmt: skip
    assert in_flight.records[1].nct_id == "NCT00000002"
    assert ids(app_client.get("/similar/NCT00000001")) == ["NCT00000002", "NCT00000003"]


def test_reload_refuses_a_damaged_index_and_keeps_serving(own_index: Path) -> None:
    app_client = TestClient(create_app(own_index, reload_token=TOKEN))
    serving = app_client.app.state.holder.index
    _damage(own_index)
    response = app_client.post("/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 409
    detail = response.json()["detail"]
    assert "new index refused" in detail and "records.jsonl" in detail
    assert app_client.app.state.holder.index is serving
    assert ids(app_client.get("/similar/NCT00000004?k=1")) == ["NCT00000005"]
    assert "records.jsonl" in app_client.get("/ready").json()["last_reload_error"]


def test_change_check_swaps_a_new_build_and_refuses_a_damaged_one(
    own_index: Path, tmp_path: Path
) -> None:
    holder = TestClient(create_app(own_index)).app.state.holder
    assert holder.reload_if_changed() is False  # nothing new
    first = holder.index
    _rebuild(own_index, tmp_path)
    assert holder.reload_if_changed() is True
    second = holder.index
    assert second is not first
    _damage(own_index)
    assert holder.reload_if_changed() is False
    assert holder.index is second
    assert holder.reload_if_changed() is False  # a refused build is not retried


def test_watcher_reloads_in_the_background(own_index: Path, tmp_path: Path, monkeypatch) -> None:
    import time

    monkeypatch.setenv(WATCH_ENV, "0.05")
    app = create_app(own_index)
    with TestClient(app) as app_client:  # the context runs the lifespan, so the watcher
        first = app.state.holder.index
        _rebuild(own_index, tmp_path)
        deadline = time.monotonic() + 10
        while app.state.holder.index is first and time.monotonic() < deadline:
            time.sleep(0.05)
        assert app.state.holder.index is not first
        assert app_client.get("/similar/NCT00000001").status_code == 200


def test_requests_during_reloads_all_succeed(own_index: Path, tmp_path: Path) -> None:
    app_client = TestClient(create_app(own_index, reload_token=TOKEN))
    headers = {"Authorization": f"Bearer {TOKEN}"}
    stop = threading.Event()
    statuses: list[int] = []

    def ask() -> None:
        while not stop.is_set():
            for number in (1, 4, 7):
                statuses.append(app_client.get(f"/similar/NCT{number:08d}").status_code)

    askers = [threading.Thread(target=ask) for _ in range(3)]
    for thread in askers:
        thread.start()
    try:
        for attempt in range(3):
            _rebuild(own_index, tmp_path / f"round-{attempt}")
            assert app_client.post("/admin/reload", headers=headers).status_code == 200
    finally:
        stop.set()
        for thread in askers:
            thread.join()
    assert statuses and set(statuses) == {200}


def _rebuild(folder: Path, tmp_path: Path) -> None:
    """Build the tiny index again into ``folder``, as ``recommender build --out`` does."""
    build_tiny_index(tmp_path / "rebuild", out=folder)


def _damage(folder: Path) -> None:
    """A new build whose records file was altered after hashing (same size)."""
    with Staging(folder) as staging:
        for path in Path(os.path.realpath(folder)).iterdir():
            shutil.copyfile(path, staging.folder / path.name)
        records = staging.folder / "records.jsonl"
        data = bytearray(records.read_bytes())
        data[10:14] = b"XXXX"
        records.write_bytes(bytes(data))
        staging.publish()


# -- the HTML page -----------------------------------------------------------------------


def test_page_without_a_query_shows_the_box(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert '<input type="text" name="q"' in response.text
    assert "Index of 9 studies" in response.text
    assert 'id="results"' not in response.text


def test_page_lists_related_trials_with_links(client: TestClient) -> None:
    response = client.get("/?q=NCT00000004")
    assert response.status_code == 200
    html = response.text
    assert "Trials like: Inhaled corticosteroids for childhood asthma" in html
    assert "Budesonide and formoterol in adult asthma" in html
    assert "Asthma education for school children" in html
    assert 'href="/?q=NCT00000005&amp;k=10"' in html
    results = html[html.index('<ol class="results"') : html.index("</ol>")]
    assert '<span class="badge status-RECRUITING">Recruiting</span>' in results
    assert '<span class="badge status-WITHDRAWN">Withdrawn</span>' in results
    assert '<span class="badge">Phase 3</span>' in results
    assert '<span class="term">budesonide</span>' in html
    assert "http://" not in html and "https://" not in html  # nothing fetched elsewhere


def test_page_text_query_and_filters(client: TestClient) -> None:
    response = client.get("/", params={"q": "asthma inhaler", "status": ["", "WITHDRAWN"]})
    assert response.status_code == 200
    assert response.text.count("<li data-nct-id=") == 1
    assert 'data-nct-id="NCT00000006"' in response.text
    assert "status=WITHDRAWN" in response.text  # links keep the filter


@pytest.mark.parametrize(
    ("q", "status", "says"),
    [
        ("NCT09999999", 404, "is not in this index"),
        ("nct12", 422, "is not an NCT id"),
        ("zebra quantum", 422, "none of the words"),
    ],
)
def test_page_shows_errors(client: TestClient, q: str, status: int, says: str) -> None:
    response = client.get("/", params={"q": q})
    assert response.status_code == status
    assert says in response.text and 'role="alert"' in response.text


def test_page_bad_filter_is_shown(client: TestClient) -> None:
    response = client.get("/", params={"q": "NCT00000001", "status": "DONE"})
    assert response.status_code == 422
    assert "unknown status &#39;DONE&#39;" in response.text


@pytest.mark.parametrize(("k", "shown"), [("1000", 100), ("0", 1), ("many", 10), ("2", 2)])
def test_page_keeps_k_in_range(client: TestClient, k: str, shown: int) -> None:
    response = client.get("/", params={"q": "NCT00000004", "k": k})
    assert response.status_code == 200
    assert f'<option value="{shown}" selected>' in response.text


def test_page_escapes_what_it_shows(client: TestClient) -> None:
    response = client.get("/", params={"q": "<script>alert(1)</script> asthma"})
    assert "<script>" not in response.text
    assert "&lt;script&gt;" in response.text
