"""What operators rely on: warm-up before ready, metrics, request logs, CORS, default k."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.asgi.telemetry import REQUEST_LOGGER
from api.html import page
from api.schemas import SimilarQuery
from api.settings import CORS_ENV, REQUEST_LOG_ENV
from recommender.cli import make_parser
from recommender.core import DEFAULT_RESULTS
from tests.test_api import shared_tiny_index

ORIGIN = "https://trials.example.org"


@pytest.fixture(scope="module")
def tiny_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_tiny_index(tmp_path_factory)


# -- warm-up -------------------------------------------------------------------------


def test_ready_only_after_the_warm_up(tiny_index: Path) -> None:
    app = create_app(tiny_index)
    before = TestClient(app).get("/ready")  # no lifespan: not warmed up
    assert before.status_code == 503 and before.json()["ready"] is False
    with TestClient(app) as client:
        after = client.get("/ready")
        assert after.status_code == 200 and after.json()["ready"] is True
    report = app.state.warm_up
    assert set(report.steps) == {"id query", "free-text query", "page"}
    assert report.ok, report.steps


def test_warm_up_can_be_turned_off(tiny_index: Path) -> None:
    app = create_app(tiny_index, warm=False)
    with TestClient(app) as client:
        assert client.get("/ready").json()["ready"] is True
    assert app.state.warm_up is None


def test_warm_up_requests_are_not_counted(tiny_index: Path) -> None:
    with TestClient(create_app(tiny_index)) as client:
        assert "/similar/{nct_id}" not in client.get("/metrics").text


WARM_UP_PROBE = """
import sys
from fastapi.testclient import TestClient
from api.app import create_app
from recommender.neighbours import _heap_kernels, explain

app = create_app(sys.argv[1])
compiled = lambda: {f.__name__: len(f.signatures) for f in (explain.explain_kernel,
                    _heap_kernels.rows_top_k)}
print(compiled())
with TestClient(app):
    print(compiled())
"""


def test_warm_up_compiles_the_kernels(tiny_index: Path) -> None:
    # In a fresh process: in this one, other tests may have compiled them already.
    out = subprocess.run(
        [sys.executable, "-c", WARM_UP_PROBE, str(tiny_index)],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[1],
        timeout=300,
    ).stdout.splitlines()
    before, after = (eval(line) for line in out[-2:])
    assert not any(before.values())
    assert all(after.values()), after


# -- metrics -------------------------------------------------------------------------


def test_metrics_count_by_route_template(tiny_index: Path) -> None:
    client = TestClient(create_app(tiny_index))
    client.get("/similar/NCT00000001?k=2")
    client.get("/similar/NCT00000002?k=2")
    client.get("/similar/nct00000003")  # through FastAPI's routing, not the fast path
    client.get("/trials/NCT09999999")
    client.get("/no/such/page")
    client.get("/?q=NCT00000001&k=2")  # the page's fast path
    client.get("/?k=2&q=NCT00000001")  # its route
    text = client.get("/metrics").text
    assert 'recommender_requests_total{method="GET",route="/",status="200"} 2.0' in text
    assert (
        'recommender_requests_total{method="GET",route="/similar/{nct_id}",status="200"} 3.0'
        in text
    )
    assert 'route="/trials/{nct_id}",status="404"} 1.0' in text
    assert 'route="<unmatched>",status="404"} 1.0' in text
    assert "NCT00000001" not in text  # no raw paths: a fixed set of series
    assert (
        'recommender_request_duration_seconds_count{method="GET",route="/similar/{nct_id}"} 3.0'
        in text
    )


def test_metrics_describe_the_index(tiny_index: Path) -> None:
    client = TestClient(create_app(tiny_index))
    response = client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    lines = dict(
        line.rsplit(" ", 1) for line in response.text.splitlines() if not line.startswith("#")
    )
    assert float(lines["recommender_index_studies"]) == 9
    assert float(lines["recommender_index_bytes"]) > 0
    assert float(lines["recommender_index_built_timestamp_seconds"]) > 1.7e9
    assert float(lines["recommender_index_build_duration_seconds"]) > 0


def test_metrics_can_be_turned_off(tiny_index: Path) -> None:
    assert TestClient(create_app(tiny_index, metrics=False)).get("/metrics").status_code == 404


# -- request log ---------------------------------------------------------------------


def test_one_json_log_line_per_request(tiny_index: Path, caplog) -> None:
    client = TestClient(create_app(tiny_index))
    with caplog.at_level(logging.INFO, logger=REQUEST_LOGGER):
        client.get("/similar/NCT00000001?k=2")
        client.get("/trials/nct0000")
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == REQUEST_LOGGER]
    assert len(lines) == 2
    first, second = lines
    assert first["method"] == "GET" and first["route"] == "/similar/{nct_id}"
    assert first["status"] == 200 and first["duration_ms"] >= 0
    assert first["client"] == "testclient" and first["path"] == "/similar/NCT00000001"
    assert second["route"] == "/trials/{nct_id}" and second["status"] == 422


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_request_log_can_be_quiet(tiny_index: Path, caplog, monkeypatch, how: str) -> None:
    if how == "argument":
        app = create_app(tiny_index, log_requests=False)
    else:
        monkeypatch.setenv(REQUEST_LOG_ENV, "off")
        app = create_app(tiny_index)
    with caplog.at_level(logging.INFO, logger=REQUEST_LOGGER):
        TestClient(app).get("/health")
    assert not [r for r in caplog.records if r.name == REQUEST_LOGGER]


# -- CORS ----------------------------------------------------------------------------


def test_no_cors_headers_by_default(tiny_index: Path) -> None:
    client = TestClient(create_app(tiny_index))
    response = client.get("/similar/NCT00000001", headers={"Origin": ORIGIN})
    assert "access-control-allow-origin" not in response.headers


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_cors_for_configured_origins(tiny_index: Path, monkeypatch, how: str) -> None:
    if how == "argument":
        app = create_app(tiny_index, cors_origins=[ORIGIN])
    else:
        monkeypatch.setenv(CORS_ENV, f"{ORIGIN}, https://other.example.org")
        app = create_app(tiny_index)
    client = TestClient(app)
    response = client.get("/similar/NCT00000001", headers={"Origin": ORIGIN})
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert "etag" in response.headers["access-control-expose-headers"].lower()
    preflight = client.options(
        "/similar",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    stranger = client.get("/similar/NCT00000001", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in stranger.headers


def test_serve_takes_repeated_cors_origins() -> None:
    args = make_parser().parse_args(
        ["serve", "--cors-origin", ORIGIN, "--cors-origin", "https://b.example"]
    )
    assert args.cors_origin == [ORIGIN, "https://b.example"]
    assert make_parser().parse_args(["serve"]).cors_origin == []


# -- default k -----------------------------------------------------------------------


def test_default_k_is_ten_everywhere(tiny_index: Path) -> None:
    assert DEFAULT_RESULTS == 10
    assert SimilarQuery().k == 10
    assert page.page_k("not a number") == 10
    assert make_parser().parse_args(["similar", "NCT00000001"]).k == 10
    schema = TestClient(create_app(tiny_index)).get("/openapi.json").json()
    parameters = schema["paths"]["/similar/{nct_id}"]["get"]["parameters"]
    assert next(p for p in parameters if p["name"] == "k")["schema"]["default"] == 10
