"""The service's hot path gives the answers of the plain engine, and caches correctly.

The lookup route is answered by compiled explanations, partial record decoding and a
fast path before FastAPI's routing; each is checked here against the slow, obvious
computation it replaces.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.asgi.fastpath import plain_k, plain_page_lookup
from api.html import page
from api.schemas import SimilarResponse
from api.service import build_tag, decode_display, prepare, similar_to_trial_payload
from recommender.index import TrialIndex
from tests.test_api import shared_tiny_index


@pytest.fixture(scope="module")
def tiny_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_tiny_index(tmp_path_factory)


@pytest.fixture(scope="module")
def index(tiny_index: Path) -> TrialIndex:
    return TrialIndex.load(tiny_index)


@pytest.fixture(scope="module")
def client(tiny_index: Path) -> TestClient:
    return TestClient(create_app(tiny_index, cache_seconds=60))


def test_explanations_match_the_per_result_explain(index: TrialIndex) -> None:
    explainer = prepare(index).explainer_
    for position in range(len(index)):
        results = index.similar(str(index.ids[position]), 5)
        positions = np.array([r.position for r in results], dtype=np.int64)
        query = index.vectors[position]
        together = explainer.explain_results(query.indices, query.data, positions, n_terms=2)
        for result, explained in zip(results, together, strict=True):
            alone = index.explain(query, result.position, n_terms=2)
            assert [(e["field"], e["terms"]) for e in explained] == [
                (e["field"], e["terms"]) for e in alone
            ]
            assert [e["score"] for e in explained] == pytest.approx(
                [e["score"] for e in alone], abs=1e-6
            )


def test_explanations_do_not_depend_on_column_order(index: TrialIndex) -> None:
    # A row stored unsorted is searched, not merged: same answer.
    explainer = prepare(index).explainer_
    query = index.vectors[0]
    positions = np.arange(1, len(index), dtype=np.int64)
    shuffled = np.random.default_rng(0).permutation(len(query.indices))
    assert explainer.explain_results(
        query.indices[shuffled], query.data[shuffled], positions
    ) == explainer.explain_results(query.indices, query.data, positions)


def test_display_record_has_the_stored_fields(index: TrialIndex) -> None:
    for position in range(len(index)):
        record = index.records[position]
        shown = decode_display(index.records.line(position))
        assert shown.nct_id == record.nct_id
        assert shown.display_title == record.display_title
        assert shown.conditions == list(record.conditions)
        assert shown.intervention_names == [i.name for i in record.interventions]
        assert shown.phases == list(record.phases)
        assert shown.overall_status == record.overall_status


def test_payload_is_a_valid_response_with_the_engine_ranking(index: TrialIndex) -> None:
    for position in range(len(index)):
        nct_id = str(index.ids[position])
        payload = similar_to_trial_payload(index, nct_id, 3, {})
        SimilarResponse.model_validate(payload)  # the documented schema holds
        assert [r["nct_id"] for r in payload["results"]] == [
            n.nct_id for n in index.similar(nct_id, 3)
        ]


@pytest.mark.parametrize(
    ("query", "k"),
    [(b"", 10), (b"k=3", 3), (b"k=100", 100), (b"k=101", None), (b"k=0", None),
     (b"k=03", None), (b"k=3&status=RECRUITING", None), (b"K=3", None), (b"k=", None)],
)  # fmt: skip
def test_plain_k_recognises_only_a_lone_valid_k(query: bytes, k: int | None) -> None:
    assert plain_k(query) == k


@pytest.mark.parametrize("path", ["/similar/NCT00000001?k=2", "/similar/NCT00000004?k=1"])
def test_fast_path_answers_exactly_as_the_route(client: TestClient, path: str) -> None:
    fast = client.get(path)
    # A lower-case id is not taken by the fast path: the FastAPI route answers it.
    routed = client.get(path.replace("NCT", "nct"))
    assert fast.status_code == routed.status_code == 200
    assert fast.content == routed.content
    assert fast.headers["content-type"] == routed.headers["content-type"] == "application/json"
    assert fast.headers["cache-control"] == routed.headers["cache-control"]


def test_fast_path_leaves_errors_to_the_route(client: TestClient) -> None:
    assert client.get("/similar/NCT09999999?k=2").status_code == 404
    bad_k = client.get("/similar/NCT00000001?k=0")
    assert bad_k.status_code == 422 and bad_k.json()["errors"][0]["loc"] == ["query", "k"]


@pytest.mark.parametrize(
    ("query", "lookup"),
    [(b"q=NCT00000004", ("NCT00000004", 10)), (b"q=NCT00000004&k=3", ("NCT00000004", 3)),
     (b"q=NCT00000004&k=10&status=&phase=&study_type=", ("NCT00000004", 10)),
     (b"q=NCT00000004&k=101", None), (b"q=nct00000004", None), (b"q=NCT0000000", None),
     (b"q=NCT00000004&status=RECRUITING", None), (b"k=3&q=NCT00000004", None),
     (b"q=asthma", None), (b"", None)],
)  # fmt: skip
def test_plain_page_lookup_recognises_an_id_with_at_most_k(
    query: bytes, lookup: tuple[str, int] | None
) -> None:
    assert plain_page_lookup(query) == lookup


@pytest.mark.parametrize(
    "query",
    ["q=NCT00000004&k=5", "q=NCT00000001&k=2", "q=NCT00000004&k=3&status=&phase=&study_type="],
)  # k within the tiny index's 5 stored neighbours: a lookup
def test_page_fast_path_answers_exactly_as_the_route(
    client: TestClient, query: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    routed_calls = []
    render = page.home_page  # what the fast path holds; the route looks it up per call
    monkeypatch.setattr(page, "home_page", lambda *a: routed_calls.append(a) or render(*a))
    fast = client.get(f"/?{query}")
    assert routed_calls == []
    # k first is not taken by the fast path: the FastAPI route answers it.
    params = query.split("&")
    routed = client.get("/?" + "&".join(params[1:] + params[:1]))
    assert len(routed_calls) == 1
    assert fast.status_code == routed.status_code == 200
    assert fast.text == routed.text and 'id="results"' in fast.text
    assert fast.headers["content-type"] == routed.headers["content-type"]


def test_page_fast_path_shows_an_unknown_id_as_the_route_does(client: TestClient) -> None:
    fast, routed = client.get("/?q=NCT09999999&k=2"), client.get("/?k=2&q=NCT09999999")
    assert fast.status_code == routed.status_code == 404
    assert fast.text == routed.text and "is not in this index" in fast.text


def test_page_fast_path_leaves_a_search_to_the_route(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    routed_calls = []
    render = page.home_page
    monkeypatch.setattr(page, "home_page", lambda *a: routed_calls.append(a) or render(*a))
    client.get("/?q=NCT00000004&k=10")  # more than the 5 stored neighbours
    assert len(routed_calls) == 1


# -- caching -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/similar/NCT00000001?k=2", "/trials/NCT00000001", "/trials/NCT00000001/page",
     "/embed/NCT00000001", "/embed/NCT00000001?k=2&status=RECRUITING"],
)  # fmt: skip
def test_etag_and_cache_control_then_304(client: TestClient, path: str) -> None:
    first = client.get(path)
    etag = first.headers["etag"]
    assert first.headers["cache-control"] == "public, max-age=60"
    again = client.get(path, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    weak_in_a_list = client.get(path, headers={"If-None-Match": f'"other", W/{etag}'})
    assert weak_in_a_list.status_code == 304
    assert client.get(path, headers={"If-None-Match": '"other"'}).status_code == 200


def test_etag_differs_by_query_and_by_build(client: TestClient, index: TrialIndex) -> None:
    tags = {
        client.get(p).headers["etag"]
        for p in ("/similar/NCT00000001?k=2", "/similar/NCT00000001?k=1", "/trials/NCT00000001")
    }
    assert len(tags) == 3
    assert prepare(index).build_tag_ in next(iter(tags))
    rebuilt = {**index.meta, "built_at": "2030-01-01T00:00:00+00:00"}
    assert build_tag(rebuilt) != build_tag(index.meta)


def test_cache_seconds_zero_sends_no_cache(tiny_index: Path) -> None:
    client = TestClient(create_app(tiny_index, cache_seconds=0))
    assert client.get("/trials/NCT00000001").headers["cache-control"] == "no-cache"


def test_errors_carry_no_etag(client: TestClient) -> None:
    assert "etag" not in client.get("/similar/NCT09999999").headers
    for path in ("/trials/NCT09999999/page", "/trials/nct12/page", "/embed/NCT09999999"):
        response = client.get(path)
        assert response.status_code in (404, 422) and "etag" not in response.headers


def test_pages_etags_differ_by_page_and_query(client: TestClient) -> None:
    paths = ("/trials/NCT00000001/page", "/embed/NCT00000001", "/embed/NCT00000001?k=2")
    tags = {client.get(p).headers["etag"] for p in paths}
    assert len(tags) == 3
    assert client.get("/trials/NCT00000001").headers["etag"] not in tags


def test_embed_not_modified_keeps_its_frame_policy(client: TestClient) -> None:
    box = client.get("/embed/NCT00000001")
    again = client.get("/embed/NCT00000001", headers={"If-None-Match": box.headers["etag"]})
    assert again.status_code == 304
    policy = again.headers["content-security-policy"]
    assert policy == box.headers["content-security-policy"] and "frame-ancestors *" in policy
