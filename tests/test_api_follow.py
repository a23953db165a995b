"""A server follows its index: a build or an update at the served path is served within
seconds, by default, with no restart, no admin token and no failed request; ``/ready``
and ``/metrics`` name the version actually loaded."""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.server import ServerProcess
from api.settings import INDEX_ENV, WATCH_ENV, Settings
from recommender.cli import EXIT_OK, main
from tests.factories import TINY_STUDIES, build_tiny_index, study_json, write_studies

NEW = "NCT00000010"
NEW_STUDY = study_json(
    NEW,
    "Inhaled budesonide for adults with severe asthma",
    conditions=("Asthma",),
    interventions=(("DRUG", "Budesonide"),),
    status="RECRUITING",
)


@pytest.fixture
def served(tmp_path: Path) -> Path:
    """An index behind a served link, as ``make serve`` leaves it: models/index."""
    return build_tiny_index(tmp_path / "first", out=tmp_path / "models" / "index")


def rebuild_with_new_study(served: Path, tmp_path: Path) -> None:
    build_tiny_index(tmp_path / "second", out=served, studies=[*TINY_STUDIES, NEW_STUDY])


def wait_for(condition, seconds: float = 20.0) -> float:
    """Seconds until ``condition()`` holds; fails the test after ``seconds``."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < seconds, "not within the deadline"
        time.sleep(0.05)
    return time.monotonic() - started


def test_watching_is_on_by_default_every_two_seconds():
    assert Settings.from_env({}).watch_seconds == 2.0
    assert Settings.from_env({WATCH_ENV: "0"}).watch_seconds == 0.0
    assert Settings.from_env({WATCH_ENV: "0.5"}).watch_seconds == 0.5


def test_ready_names_the_version_loaded_not_the_one_linked(served: Path, tmp_path: Path):
    app = create_app(served, watch_seconds=0, warm=False)
    client = TestClient(app)
    before = client.get("/ready").json()
    assert before["path"] == str(served.resolve()) and before["up_to_date"] is True
    assert before["served_path"] == str(served.absolute()) and before["studies"] == 9
    rebuild_with_new_study(served, tmp_path)
    stale = client.get("/ready").json()
    # The link leads to the new version; the process still serves the old one, and says so.
    assert stale["path"] == before["path"] != str(served.resolve())
    assert (stale["studies"], stale["loaded_at"]) == (9, before["loaded_at"])
    assert stale["up_to_date"] is False
    assert app.state.holder.reload_if_changed() is True
    after = client.get("/ready").json()
    assert after["path"] == str(served.resolve()) and after["studies"] == 10
    assert after["loaded_at"] > before["loaded_at"] and after["up_to_date"] is True


def test_metrics_name_the_version_and_count_reloads(served: Path, tmp_path: Path):
    app = create_app(served, watch_seconds=0, warm=False)
    client = TestClient(app)
    version = served.resolve()
    text = client.get("/metrics").text
    assert 'recommender_index_info{built_at="' in text and f'path="{version}"' in text
    assert f'version="{version.name}"' in text
    assert 'recommender_index_reloads_total{outcome="loaded"} 0.0' in text
    rebuild_with_new_study(served, tmp_path)
    app.state.holder.reload_if_changed()
    text = client.get("/metrics").text
    assert f'version="{served.resolve().name}"' in text and "recommender_index_studies 10.0" in text
    assert 'recommender_index_reloads_total{outcome="loaded"} 1.0' in text
    assert 'recommender_index_reloads_total{outcome="refused"} 0.0' in text


def test_a_new_build_is_served_by_default(served: Path, tmp_path: Path, monkeypatch):
    monkeypatch.delenv(WATCH_ENV, raising=False)
    app = create_app(served, warm=False)  # no watch setting, no admin token
    with TestClient(app) as client:  # runs the lifespan, hence the watcher
        assert client.get(f"/similar/{NEW}").status_code == 404
        rebuild_with_new_study(served, tmp_path)
        waited = wait_for(lambda: client.get(f"/similar/{NEW}").status_code == 200)
        assert waited < 2.0 + 5.0  # the interval, and the load of a tiny index
        assert client.get("/ready").json()["studies"] == 10


def test_serve_takes_its_index_from_the_environment(served, tmp_path, monkeypatch):
    """`recommender serve` without --index serves $RECOMMENDER_INDEX, and passes --watch
    to its workers (uvicorn is not started: its arguments are what is checked)."""
    import uvicorn

    started = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: started.append(kwargs))
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")  # no models/index here
    monkeypatch.setenv(INDEX_ENV, str(served))
    monkeypatch.setenv(WATCH_ENV, "")
    assert main(["serve", "--watch", "0.5"]) == EXIT_OK
    assert started and os.environ[INDEX_ENV] == str(served.absolute())
    assert Settings.from_env().watch_seconds == 0.5
    monkeypatch.delenv(INDEX_ENV)
    assert main(["serve"]) == 2  # models/index, which is not here: a clear error


@pytest.mark.server
def test_serve_follows_an_update_under_load(served: Path, tmp_path: Path, monkeypatch):
    """`recommender serve` as a person starts it, `recommender update` at its served path
    while clients ask without pause: the new trial is served within seconds and no
    request fails."""
    monkeypatch.delenv(WATCH_ENV, raising=False)
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    stop = threading.Event()

    def ask(url: str) -> None:
        requests = [
            ("GET", "/similar/NCT00000001?k=3", None),
            ("GET", "/similar/NCT00000004?status=COMPLETED&status=RECRUITING", None),
            ("POST", "/similar", {"text": "budesonide for asthma", "k": 5}),
        ]
        with httpx.Client(base_url=url, timeout=30) as http:
            while not stop.is_set():
                for method, path, body in requests:
                    try:
                        statuses[http.request(method, path, json=body).status_code] += 1
                    except httpx.HTTPError as exc:
                        failures.append(f"{method} {path}: {exc!r}")

    with ServerProcess(served) as server, httpx.Client(base_url=server.url) as http:
        assert http.get(f"/similar/{NEW}").status_code == 404
        clients = [threading.Thread(target=ask, args=(server.url,)) for _ in range(3)]
        for thread in clients:
            thread.start()
        try:
            time.sleep(0.5)
            source = write_studies(tmp_path / "fetched", [NEW_STUDY])
            update = ["update", "--index", str(served), "--source", str(source), "--quiet"]
            assert main(update) == EXIT_OK
            wait_for(lambda: http.get(f"/similar/{NEW}").status_code == 200)
            time.sleep(0.5)  # and requests go on on the new version
        finally:
            stop.set()
            for thread in clients:
                thread.join()
        ready = http.get("/ready").json()
        log = server.log()
    assert failures == [] and set(statuses) == {200}, (statuses, failures)
    assert sum(statuses.values()) > 30
    assert ready["studies"] == 10 and ready["path"] == str(served.resolve())
    assert "serving " in log and "instead of" in log
