"""A loaded index never crashes the process: values the kernels index with are checked.

An index whose files were altered and whose hashes were rewritten to match passes
the SHA-256 check. Before the fix, a column index of 2**31 - 1 in the vectors
crashed the server's warm-up (``explain_kernel`` read out of bounds: SIGSEGV), one
in the postings crashed the request that searched with it, and the CLI ended in an
``IndexError`` traceback. Now loading refuses the file, naming it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from recommender.index import DamagedIndexError, TrialIndex, sha256_file
from recommender.index._checks_compiled import first_outside
from tests.factories import build_tiny_index
from tests.test_index_safety import _rewrite, _save_npy

BIG = 2**31 - 1


@pytest.fixture(scope="module")
def plain(tmp_path_factory) -> Path:
    built = build_tiny_index(tmp_path_factory.mktemp("tiny"))
    return Path(built).resolve()


def _tampered(tmp_path: Path, plain: Path, name: str, change) -> Path:
    """A copy of the index with ``name`` changed and its hash rewritten to match."""
    import shutil

    folder = Path(shutil.copytree(plain, tmp_path / "index"))
    for path in folder.iterdir():
        path.chmod(0o644)
    array = np.load(folder / name, allow_pickle=False)
    _rewrite(folder, name, _save_npy(change(array.copy())))
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["files"][name]["sha256"] == sha256_file(folder / name)  # the hash passes
    return folder


def _every(step: int, value: int):
    def change(array: np.ndarray) -> np.ndarray:
        array[::step] = value
        return array

    return change


CASES = [
    ("vectors.indices.npy", _every(1000, BIG), "vectors.indices.npy holds column 2,147,483,647"),
    ("vectors.indices.npy", _every(7, -1), "vectors.indices.npy holds column -1"),
    ("postings.indices.npy", _every(1000, BIG), "postings.indices.npy holds row 2,147,483,647"),
    ("postings.indices.npy", _every(5, 9), r"postings.indices.npy holds row 9 .*\[0, 9\)"),
]


@pytest.mark.parametrize(("name", "change", "message"), CASES)
def test_an_index_out_of_range_is_refused_at_load_naming_the_file(
    tmp_path, plain, name, change, message
):
    folder = _tampered(tmp_path, plain, name, change)
    for verify in (True, False):
        with pytest.raises(DamagedIndexError, match=message):
            TrialIndex.load(folder, verify=verify)


def test_the_cli_and_the_server_refuse_it_without_a_crash(tmp_path, plain):
    # In child processes: before the fix, this is where the process died of SIGSEGV.
    folder = _tampered(tmp_path, plain, "postings.indices.npy", _every(1, BIG))
    similar = [sys.executable, "-m", "recommender", "similar", "--text", "liver failure",
               "--index", str(folder), "-k", "9", "--why"]  # fmt: skip  # searches the postings
    done = subprocess.run(similar, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "postings.indices.npy holds row" in done.stderr and "Traceback" not in done.stderr
    serve = [sys.executable, "-m", "recommender", "serve", "--index", str(folder), "--port", "1"]
    done = subprocess.run(serve, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "postings.indices.npy holds row" in done.stderr


def test_a_whole_index_in_range_loads(plain):
    index = TrialIndex.load(plain)
    assert [n.nct_id for n in index.similar("NCT00000007", 1)] == ["NCT00000008"]


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_the_compiled_check_finds_the_first_value_outside(dtype):
    values = np.arange(100, dtype=dtype) % 10
    assert first_outside(values, 0, 100, 10) == -1
    values[[37, 80]] = [10, -3]
    assert first_outside(values, 0, 100, 10) == 37
    assert first_outside(values, 38, 100, 10) == 80
    assert first_outside(values, 81, 100, 10) == -1
