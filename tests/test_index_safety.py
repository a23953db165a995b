"""The index on disk survives kills, stale leftovers and damage (issue #13).

Crashes are real: a forked copy of this process builds with ``$RECOMMENDER_FAULT_AT``
naming a point (see :mod:`recommender.infra.faults`) and dies there by SIGKILL, leaving
exactly what a ``kill -9`` leaves. The parent then checks that the served path loads
a complete index and that the next build removes whatever the dead one left.
"""

from __future__ import annotations

import copy
import fcntl
import gc
import json
import os
import shutil
import signal
import stat
import time
from pathlib import Path

import numpy as np
import pytest

from recommender.index import (
    META_FILE,
    DamagedIndexError,
    Staging,
    TrialIndex,
    owners,
    sha256_file,
    versions,
    versions_folder,
)
from recommender.index.checks import REQUIRED_FILES
from recommender.infra import FAULT_ENV
from tests.factories import build_tiny_index

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")


@pytest.fixture(scope="module")
def plain_index(tmp_path_factory) -> Path:
    """A tiny index as a plain folder: the layout built before versions existed."""
    built = build_tiny_index(tmp_path_factory.mktemp("tiny"))
    plain = built.parent / "plain"
    shutil.copytree(built, plain)  # copies the version the link points at
    for path in plain.iterdir():
        path.chmod(0o644)
    return plain


def _served(tmp_path: Path, plain_index: Path) -> Path:
    out = tmp_path / "models" / "index"
    out.parent.mkdir()
    shutil.copytree(plain_index, out)
    return out


def _build(tmp_path: Path, out: Path, k: int) -> None:
    build_tiny_index(tmp_path / f"build-k{k}", k=k, out=out)


def _killed_build(tmp_path: Path, out: Path, point: str, *, no_exchange: bool = False) -> None:
    """Build into ``out`` in a forked child that is SIGKILLed at ``point``."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            os.environ[FAULT_ENV] = point
            if no_exchange:
                versions.exchange = lambda a, b: False
            _build(tmp_path / "child", out, k=3)
        finally:
            os._exit(7)  # reached only if the fault point was never hit
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, (point, status)


def _leftovers(out: Path) -> list[str]:
    """Temporary names of writers beside the served path and among its versions."""
    side = [p.name for p in out.parent.iterdir() if p.name not in ("index", ".index.versions")]
    inside = [p.name for p in versions_folder(out).iterdir() if p.name.startswith(".tmp-")]
    return side + inside


BUILD_POINTS = ["read", "vectorised", "neighbours", "write", "written"]
SAVE_POINTS = ["before-rename-version", "renamed-version", "before-swap", "swapped"]


@pytest.mark.parametrize("layout", ["versions", "plain"])
@pytest.mark.parametrize("point", BUILD_POINTS + SAVE_POINTS)
def test_a_build_killed_anywhere_leaves_a_served_index(tmp_path, plain_index, layout, point):
    out = _served(tmp_path, plain_index)
    if layout == "versions":
        _build(tmp_path, out, k=4)
    before = TrialIndex.load(out).meta["counts"]["k"]
    _killed_build(tmp_path, out, point)
    served = TrialIndex.load(out)  # verified: every file, hash and structure
    assert served.meta["counts"]["k"] == (3 if point == "swapped" else before)
    del served
    gc.collect()
    _build(tmp_path, out, k=2)
    assert TrialIndex.load(out).meta["counts"]["k"] == 2
    assert _leftovers(out) == []
    locks = (".lock", ".writer")  # the lock files of writers, kept
    assert len([p for p in versions_folder(out).iterdir() if p.name not in locks]) <= 2


@pytest.mark.parametrize(
    ("point", "no_exchange"), [("exchanged", False), ("moved-aside", True), ("swapped", True)]
)
def test_replacing_an_old_layout_folder_never_leaves_no_index(
    tmp_path, plain_index, point, no_exchange
):
    out = _served(tmp_path, plain_index)
    _killed_build(tmp_path, out, point, no_exchange=no_exchange)
    assert TrialIndex.load(out).meta["counts"]["k"] == 3  # the new one is complete
    gc.collect()
    _build(tmp_path, out, k=2)
    assert out.is_symlink() and TrialIndex.load(out).meta["counts"]["k"] == 2
    assert _leftovers(out) == []


def test_an_old_layout_folder_is_replaced_by_a_link_and_kept_as_previous(tmp_path, plain_index):
    out = _served(tmp_path, plain_index)
    old_meta = (out / META_FILE).read_bytes()
    _build(tmp_path, out, k=3)
    assert out.is_symlink()
    kept = [p for p in versions_folder(out).iterdir() if "Z-legacy-" in p.name]
    assert len(kept) == 1 and (kept[0] / META_FILE).read_bytes() == old_meta


def test_stale_staging_of_a_dead_writer_is_removed_and_a_live_one_kept(tmp_path, plain_index):
    out = _served(tmp_path, plain_index)
    _killed_build(tmp_path, out, "written")
    dead = [p for p in versions_folder(out).iterdir() if p.name.startswith(".tmp-")]
    assert len(dead) == 2  # the folder and its owner lock file
    with Staging(out) as alive:  # this process's own, lock held: not to be touched
        (alive.folder / "part.npy").write_bytes(b"half written")
        _build(tmp_path, out, k=2)
        assert alive.folder.exists() and alive.owner.exists()
        assert not any(p.exists() for p in dead)
    assert not alive.folder.exists() and not alive.owner.exists()


def test_a_writers_own_spool_is_kept_whatever_the_clock_says(tmp_path, plain_index):
    out = _served(tmp_path, plain_index)
    # Named by this process at 1 ns after the epoch: as a clock stepped forward since
    # the name was made would make it look (the process "started" long after).
    mine = out.parent / f".index.records-{os.getpid()}-1"
    mine.mkdir()
    (mine / "records.jsonl").write_text("{}\n")
    _build(tmp_path, out, k=2)
    assert (mine / "records.jsonl").exists()


def test_a_reused_pid_does_not_keep_a_dead_writers_folder(tmp_path, plain_index):
    out = _served(tmp_path, plain_index)
    _build(tmp_path, out, k=3)
    staging = versions_folder(out) / ".tmp-1-1"
    staging.mkdir()
    # Pid 1 runs, but started at another time than the owner recorded: another process.
    facts = {
        "pid": 1,
        "start": -1,
        "host": os.uname().nodename,
        "boot_id": owners.boot_id(),
    }
    staging.with_name(".tmp-1-1.owner").write_text(json.dumps(facts))
    _build(tmp_path, out, k=2)
    assert not staging.exists()


def test_legacy_temporary_folders_of_dead_builds_are_removed(tmp_path, plain_index):
    out = _served(tmp_path, plain_index)
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)  # a pid that is surely gone
    for kind in ("tmp", "old", "records"):  # records: what a killed build had read
        shutil.copytree(plain_index, out.parent / f".index.{kind}-{pid}-{1}")
    mine = out.parent / f".index.tmp-{os.getpid()}-{time.time_ns()}"  # alive: kept
    mine.mkdir()
    _build(tmp_path, out, k=2)
    assert {p.name for p in out.parent.iterdir()} == {".index.versions", "index", mine.name}


def test_a_version_held_open_is_kept_and_keeps_answering(tmp_path, plain_index):
    out = _served(tmp_path, plain_index)
    _build(tmp_path, out, k=4)
    held = TrialIndex.load(out)
    for k in (3, 2, 1):
        _build(tmp_path, out, k=k)
    assert held.path.exists()
    assert held.records[0].nct_id == "NCT00000001"
    assert [n.nct_id for n in held.similar("NCT00000007", 1)] == ["NCT00000008"]
    path = held.path
    del held
    gc.collect()
    _build(tmp_path, out, k=5)
    assert not path.exists()  # let go: removed by the next build


def test_a_copied_index_closes_its_lock_once_and_no_one_elses_descriptor(tmp_path, plain_index):
    """A shallow copy shares the load's lock; dropping both closes it once.

    Closing the same descriptor number twice would close whatever file or socket the
    kernel handed that number to in between.
    """
    out = _served(tmp_path, plain_index)
    _build(tmp_path, out, k=3)
    index = TrialIndex.load(out)
    meta = index.path / "meta.json"
    twin = copy.copy(index)
    del index
    gc.collect()
    assert not _can_lock_exclusively(meta)  # the copy still holds the version
    read, write = os.pipe()  # takes the lock's number if it was wrongly closed
    try:
        del twin
        gc.collect()
        os.write(write, b"x")
        assert os.read(read, 1) == b"x"
    finally:
        os.close(read)
        os.close(write)
    assert _can_lock_exclusively(meta)


def _can_lock_exclusively(path: Path) -> bool:
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def test_a_dangling_or_missing_served_path_loads_the_newest_version(tmp_path, plain_index):
    out = _served(tmp_path, plain_index)
    _build(tmp_path, out, k=3)
    out.unlink()
    assert TrialIndex.load(out).meta["counts"]["k"] == 3
    out.symlink_to(".index.versions/gone")
    assert TrialIndex.load(out).meta["counts"]["k"] == 3


def test_version_files_are_read_only_and_never_rewritten(tmp_path, plain_index):
    out = _served(tmp_path, plain_index)
    _build(tmp_path, out, k=3)
    first = Path(os.path.realpath(out))
    before = {
        p.name: (p.stat().st_ino, p.stat().st_mtime_ns, sha256_file(p)) for p in first.iterdir()
    }
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o444 for p in first.iterdir())
    _build(tmp_path, out, k=2)
    after = {
        p.name: (p.stat().st_ino, p.stat().st_mtime_ns, sha256_file(p)) for p in first.iterdir()
    }
    assert after == before


# -- what loading checks ---------------------------------------------------------------


def _own_copy(tmp_path: Path, plain_index: Path) -> Path:
    folder = shutil.copytree(plain_index, tmp_path / "index")
    return Path(folder)


def _rewrite(folder: Path, name: str, data: bytes, *, unlist: bool = False) -> None:
    """Replace a file and fix its recorded size and hash (or drop its entry)."""
    (folder / name).write_bytes(data)
    meta = json.loads((folder / META_FILE).read_text())
    if unlist:
        del meta["files"][name]
    else:
        meta["files"][name] = {"bytes": len(data), "sha256": sha256_file(folder / name)}
    (folder / META_FILE).write_text(json.dumps(meta))


def test_required_files_come_from_the_format_not_from_meta(tmp_path, plain_index):
    folder = _own_copy(tmp_path, plain_index)
    _rewrite(
        folder, "records.jsonl", b"\xff" * (folder / "records.jsonl").stat().st_size, unlist=True
    )
    with pytest.raises(DamagedIndexError, match=r"records\.jsonl is not listed in meta\.json"):
        TrialIndex.load(folder)
    assert "records.offsets.npy" in REQUIRED_FILES


def _save_npy(array: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "change", "message"),
    [
        ("neighbours.indices.npy", lambda a: np.where(a == 1, 99, a), r"outside \[-1, 9\)"),
        ("ids.npy", lambda a: a[::-1], "not sorted"),
        ("records.offsets.npy", lambda a: a[[0, 2, 1, *range(3, len(a))]], "non-decreasing"),
        ("records.offsets.npy", lambda a: a - 1, "non-decreasing"),
        ("vectors.indptr.npy", lambda a: a[::-1], "vectors.indptr"),
        ("facet.status.npy", lambda a: a + 50, "beyond its"),
        ("idf.npy", lambda a: a[:-1], "idf.npy"),
    ],
)
def test_structural_damage_with_a_matching_hash_is_refused(
    tmp_path, plain_index, name, change, message
):
    folder = _own_copy(tmp_path, plain_index)
    array = np.load(folder / name, allow_pickle=False)
    _rewrite(folder, name, _save_npy(change(array)))
    with pytest.raises(DamagedIndexError, match=message):
        TrialIndex.load(folder)


def test_a_record_that_does_not_decode_is_a_damaged_index_error(tmp_path, plain_index):
    folder = _own_copy(tmp_path, plain_index)
    data = bytearray((folder / "records.jsonl").read_bytes())
    data[2:6] = b"\xff\xfe\xff\xfe"  # not UTF-8, same size: offsets still agree
    _rewrite(folder, "records.jsonl", bytes(data))
    index = TrialIndex.load(folder)
    with pytest.raises(DamagedIndexError, match=r"record 0 .* cannot be read"):
        index.records[0]
    with pytest.raises(DamagedIndexError, match="cannot be read"):
        list(index.records)


def test_a_damaged_record_is_a_clear_error_in_the_api_and_the_cli(tmp_path, plain_index, capsys):
    from fastapi.testclient import TestClient

    from api.app import create_app
    from recommender.cli import main

    folder = _own_copy(tmp_path, plain_index)
    data = bytearray((folder / "records.jsonl").read_bytes())
    data[2:6] = b"\xff\xfe\xff\xfe"
    _rewrite(folder, "records.jsonl", bytes(data))
    client = TestClient(create_app(folder, warm=False))
    response = client.get("/trials/NCT00000001")
    assert response.status_code == 503
    assert "record 0" in response.json()["detail"] and "rebuild" in response.json()["detail"]
    # The fast lookup decodes only a result's shown fields, from the same line.
    listing = client.get("/similar/NCT00000002?k=5")
    assert listing.status_code == 503 and "rebuild" in listing.json()["detail"]
    assert client.get("/?q=NCT00000002&k=5").status_code == 503  # the page's fast path
    assert main(["similar", "NCT00000002", "--index", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "cannot be read" in err and "Traceback" not in err


def test_a_neighbour_out_of_range_is_refused_by_the_cli_without_a_traceback(
    tmp_path, plain_index, capsys
):
    from recommender.cli import main

    folder = _own_copy(tmp_path, plain_index)
    array = np.load(folder / "neighbours.indices.npy")
    _rewrite(folder, "neighbours.indices.npy", _save_npy(np.where(array == 1, 10**6, array)))
    assert main(["similar", "NCT00000001", "--index", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "neighbours.indices.npy holds rows outside" in err and "Traceback" not in err


@pytest.fixture
def updated_copy(tmp_path, plain_index) -> Path:
    """A tiny index updated once: its records in two segments, as a plain folder."""
    from recommender.pipelines.update import update_index
    from tests.factories import TINY_STUDIES, write_studies

    served = _served(tmp_path, plain_index)
    changed = json.loads(json.dumps(TINY_STUDIES[3]))
    changed["protocolSection"]["statusModule"]["overallStatus"] = "TERMINATED"
    update_index(served, [write_studies(tmp_path / "changed", [changed])], n_jobs=1)
    return _own_copy(tmp_path, Path(os.path.realpath(served)))


def test_record_segments_are_required_files(updated_copy):
    assert TrialIndex.load(updated_copy).record("NCT00000004").overall_status == "TERMINATED"
    _rewrite(updated_copy, "records.1.jsonl", b"", unlist=True)
    with pytest.raises(DamagedIndexError, match=r"records\.1\.jsonl is not listed"):
        TrialIndex.load(updated_copy)


def test_spans_outside_their_segment_are_refused(updated_copy):
    spans = np.load(updated_copy / "records.spans.npy")
    spans[3, 2] += 10**6
    _rewrite(updated_copy, "records.spans.npy", _save_npy(spans))
    with pytest.raises(DamagedIndexError, match="outside their segment"):
        TrialIndex.load(updated_copy)


def test_serve_hands_its_workers_the_served_path_not_the_version(
    tmp_path, plain_index, monkeypatch
):
    import uvicorn

    from api.settings import INDEX_ENV
    from recommender.cli import main

    out = _served(tmp_path, plain_index)
    _build(tmp_path, out, k=3)
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: None)
    monkeypatch.delenv(INDEX_ENV, raising=False)
    assert main(["serve", "--index", str(out)]) == 0
    assert os.environ[INDEX_ENV] == str(out)  # a rebuild repoints it; workers follow


def test_an_index_of_format_2_is_read_and_updated_into_format_3(tmp_path, plain_index):
    from recommender.pipelines.update import update_index
    from tests.factories import TINY_STUDIES, write_studies

    out = _served(tmp_path, plain_index)
    meta = json.loads((out / META_FILE).read_text())
    meta["format_version"] = 2  # what the code before record segments wrote
    (out / META_FILE).write_text(json.dumps(meta))
    assert len(TrialIndex.load(out)) == 9
    changed = json.loads(json.dumps(TINY_STUDIES[0]))
    changed["protocolSection"]["statusModule"]["overallStatus"] = "COMPLETED"
    update_index(out, [write_studies(tmp_path / "changed", [changed])], n_jobs=1)
    updated = TrialIndex.load(out)
    assert updated.meta["format_version"] == 3 and updated.meta["counts"]["record_segments"] == 2
    assert updated.record("NCT00000001").overall_status == "COMPLETED"
