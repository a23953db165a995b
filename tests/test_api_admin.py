"""``POST /admin/reload`` says plainly which worker process it reached (issue 27).

With ``--workers 2`` a reload reaches the worker that took the request; the answer
now names it (``worker_pid``) and says so (``reached``), instead of leaving a client
to find out from a 404 of the other worker.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from tests.test_api import shared_tiny_index


@pytest.fixture(scope="module")
def tiny_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_tiny_index(tmp_path_factory)


def test_a_reload_names_the_one_worker_it_reached(tiny_index):
    client = TestClient(create_app(tiny_index, reload_token="t", warm=False))
    answer = client.post("/admin/reload", headers={"Authorization": "Bearer t"}).json()
    assert answer["worker_pid"] == os.getpid()  # the test client runs the app here
    assert answer["reached"] == "this worker only"
    schema = client.get("/openapi.json").json()["components"]["schemas"]["ReloadOut"]
    assert "worker_pid" in schema["required"] and "reached" in schema["properties"]
