"""The real server: ``recommender serve`` in a child process, spoken to over loopback HTTP."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest

from api.launch import ServerProcess
from tests.test_api import shared_tiny_index

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def tiny_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_tiny_index(tmp_path_factory)


@pytest.fixture(scope="module")
def server(tiny_index: Path):
    with ServerProcess(tiny_index, env={"RECOMMENDER_ADMIN_TOKEN": "server-token"}) as running:
        yield running


def test_served_over_http(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as http:
        assert http.get("/health").json() == {"status": "ok"}
        assert http.get("/ready").json()["studies"] == 9
        similar = http.get("/similar/NCT00000001", params={"k": 2})
        assert similar.status_code == 200
        assert [r["nct_id"] for r in similar.json()["results"]] == ["NCT00000002", "NCT00000003"]
        posted = http.post("/similar", json={"conditions": ["Breast Cancer"], "k": 2})
        assert {r["nct_id"] for r in posted.json()["results"]} == {"NCT00000007", "NCT00000008"}
        missing = http.get("/similar/NCT09999999")
        assert missing.status_code == 404
        assert "is not in this index (built from 9 studies" in missing.json()["detail"]
        assert http.get("/similar/NCT1").status_code == 422
        assert '<ol class="results"' in http.get("/", params={"q": "NCT00000007"}).text


def test_oversized_body_over_http(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as http:
        response = http.post("/similar", json={"text": "x" * 70_000})
        assert response.status_code == 413
        assert "larger than the limit" in response.json()["detail"]
        assert http.get("/health").status_code == 200  # and the server goes on


def test_reload_over_http(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        assert http.post("/admin/reload").status_code == 401
        response = http.post("/admin/reload", headers={"Authorization": "Bearer server-token"})
        assert response.status_code == 200
        assert response.json()["reloaded"] is True


def test_two_workers_serve(tiny_index: Path) -> None:
    with ServerProcess(tiny_index, workers=2) as running:
        with httpx.Client(base_url=running.url, timeout=10) as http:
            for number in range(1, 10):
                response = http.get(f"/similar/NCT{number:08d}")
                assert response.status_code == 200
        code = running.stop()
    assert code == 0, running.log()


def test_server_stops_cleanly(tiny_index: Path) -> None:
    running = ServerProcess(tiny_index).start()
    # Uvicorn shuts down gracefully on SIGTERM, then re-raises the signal, so a clean
    # stop of a single worker is "killed by SIGTERM" after "Finished server process".
    assert running.stop() in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in running.log()
    assert "Finished server process" in running.log()


def test_latency_benchmark_runs(tiny_index: Path) -> None:
    from bench.api_latency import main

    lines: list[str] = []
    code = main(
        ["--index", str(tiny_index), "--requests", "20", "--concurrency", "2", "--workers", "1"],
        log=lines.append,
    )
    assert code == 0, "\n".join(lines)
    table = "\n".join(lines)
    assert "GET /similar/{id}" in table and "GET /health (floor)" in table
