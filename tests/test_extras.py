"""What is installed for what: building and serving run on the runtime dependencies
alone; the optional libraries (evaluation, Dask, pandas) are imported when needed with
a message naming the extra; ``--scheduler`` is checked before any source is read."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
OPTIONAL = {"sklearn", "scikit-learn", "bm25s", "pandas", "dask", "distributed"}

# Run first in a child process: importing any optional library fails, as it would
# where only the runtime dependencies are installed (`make serve`).
WITHOUT_EXTRAS = """
import sys

class WithoutExtras:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"sklearn", "bm25s", "pandas", "dask", "distributed"}:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, WithoutExtras())
"""


def run_without_extras(code: str, tmp_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_EXTRAS + code],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_runtime_dependencies_are_what_building_and_serving_need():
    runtime = {
        d.split(">")[0].split("<")[0].split("[")[0] for d in PYPROJECT["project"]["dependencies"]
    }
    assert runtime.isdisjoint(OPTIONAL)
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert set(extras) >= {"dask", "pandas", "evaluation", "dev"}
    assert set(extras["dev"]) >= {d for name, ds in extras.items() if name != "dev" for d in ds}


def test_uvicorn_is_bounded_above():
    # api/server/protocol.py subclasses its h11 protocol, which uvicorn may change.
    (uvicorn,) = [d for d in PYPROJECT["project"]["dependencies"] if d.startswith("uvicorn")]
    assert "<" in uvicorn
    import uvicorn as installed

    upper = uvicorn.split("<")[1]
    version = tuple(int(p) for p in installed.__version__.split(".")[:2])
    assert version < tuple(int(p) for p in upper.split(".")[:2]), (installed.__version__, upper)


def test_build_serve_and_query_without_any_extra(tmp_path):
    code = """
import io, json
from contextlib import redirect_stdout
from fastapi.testclient import TestClient
import recommender
from api.app import create_app
from recommender.cli import main
from tests.factories import build_tiny_index

index = build_tiny_index(__import__("pathlib").Path("."))
client = TestClient(create_app(index, warm=False))
assert client.get("/similar/NCT00000001").status_code == 200
assert client.post("/similar", json={"text": "asthma"}).status_code == 200
assert client.get("/?q=asthma").status_code == 200
assert recommender.open_index(index).similar_to_text("asthma").nct_ids
with open("labels.json", "w") as out:
    json.dump({"NCT00000004": ["NCT00000005"]}, out)
with redirect_stdout(io.StringIO()):
    assert main(["similar", "NCT00000004", "--index", str(index)]) == 0
    assert main(["evaluate", "--index", str(index), "--labels", "labels.json"]) == 0
print("ok")
"""
    done = run_without_extras(code, tmp_path)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_an_optional_library_missing_says_which_extra_to_install(tmp_path):
    code = """
from recommender.core import TrialRecord
from recommender.evaluation.baselines import BM25Ranker, plain_tfidf
from recommender.infra import MissingExtraError

for make in (lambda: BM25Ranker([TrialRecord("NCT00000001")]), plain_tfidf):
    try:
        make()
    except MissingExtraError as exc:
        print(exc)
try:
    import recommender
    recommender.open_index
    from recommender.search import Results
    from recommender.core import DisplayTitle
    Results([], None, DisplayTitle("x"), "").to_pandas()
except ImportError as exc:
    print(exc)
"""
    done = run_without_extras(code, tmp_path)
    lines = done.stdout.splitlines()
    assert done.returncode == 0, done.stderr
    assert lines[0].startswith("the BM25 baseline needs bm25s, which is not installed")
    assert "pip install 'trial-recommender[evaluation]'" in lines[0]
    assert lines[1].startswith("plain TF-IDF needs sklearn") and "[evaluation]" in lines[1]
    assert "pip install 'trial-recommender[pandas]'" in lines[2]


def test_scheduler_without_dask_fails_before_reading(tmp_path):
    code = """
from recommender.cli import main
raise SystemExit(main(["build", "--source", "missing.zip", "--scheduler", "tcp://127.0.0.1:9",
                       "--out", "index", "--quiet"]))
"""
    done = run_without_extras(code, tmp_path)
    assert done.returncode == 2, done.stderr
    assert "pip install 'trial-recommender[dask]'" in done.stderr
    assert "missing.zip" not in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "index").exists()


@pytest.mark.parametrize(
    ("address", "says"),
    [
        ("nonsense", "'nonsense' is not a Dask scheduler address"),
        ("tcp://127.0.0.1:9", "no Dask scheduler answers at tcp://127.0.0.1:9"),
    ],
)
def test_a_scheduler_that_cannot_be_used_fails_before_reading(tmp_path, address, says):
    pytest.importorskip("dask.distributed")
    code = f"""
import dask
from recommender.cli import main
with dask.config.set({{"distributed.comm.timeouts.connect": "2s"}}):
    raise SystemExit(main(["build", "--source", "missing.zip", "--scheduler", {address!r},
                           "--out", "index", "--quiet"]))
"""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, env=env
    )
    assert done.returncode == 2, done.stderr
    assert says in done.stderr and "missing.zip" not in done.stderr
    assert "Traceback" not in done.stderr
