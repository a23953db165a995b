"""A problem of the machine is one line and exit code 3, never a traceback (issue 27).

A full disk (a small tmpfs when this runs as root; a file size limit, ``ulimit -f``,
anywhere), a read-only or missing output folder, a path through a file, a worker
process that dies, memory that runs out: each is one line on stderr naming the
problem and the file, and the index served is as it was.
"""

from __future__ import annotations

import errno
import os
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from recommender.cli import EXIT_ENVIRONMENT, main
from recommender.index import TrialIndex, versions_folder
from tests.factories import TINY_STUDIES, build_tiny_index, study_json, write_studies


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _no_leftovers(out: Path) -> None:
    assert not [p for p in out.parent.iterdir() if ".records-" in p.name]
    assert not [p for p in versions_folder(out).iterdir() if p.name.startswith(".tmp-")]


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs: a real full disk. Needs root (mount); skipped elsewhere."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small file system needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def _fill(disk: Path, leave: int) -> None:
    """Fill ``disk`` up, then free about ``leave`` bytes."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as handle:
        try:
            while True:
                handle.write(b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    os.truncate(filler, max(0, filler.stat().st_size - leave))


@pytest.mark.parametrize("leave", [0, 16 * 1024], ids=["full-at-read", "full-at-save"])
def test_a_full_disk_is_one_line_exit_3_and_the_index_as_it_was(
    small_disk, tmp_path, capsys, leave
):
    out = small_disk / "index"
    build_tiny_index(tmp_path / "first", k=4, out=out)
    new = write_studies(tmp_path / "new", TINY_STUDIES)
    _fill(small_disk, leave)
    code = main(["build", "--source", str(new), "--out", str(out), "-k", "2", "--quiet"])
    line = _one_line(capsys.readouterr().err)
    assert code == EXIT_ENVIRONMENT
    assert "no space left on the device" in line and "ENOSPC" in line
    assert f"the index at {out} is as it was" in line
    assert TrialIndex.load(out).meta["counts"]["k"] == 4
    _no_leftovers(out)


def test_a_full_disk_during_an_update(small_disk, tmp_path, capsys):
    out = small_disk / "index"
    build_tiny_index(tmp_path / "first", k=4, out=out)
    added = study_json("NCT00000042", "Budesonide for adults with asthma", conditions=("Asthma",))
    new = write_studies(tmp_path / "new", [added])
    _fill(small_disk, 0)
    code = main(["update", "--index", str(out), "--source", str(new), "--quiet"])
    line = _one_line(capsys.readouterr().err)
    assert code == EXIT_ENVIRONMENT and "no space left" in line and "as it was" in line
    assert "NCT00000042" not in TrialIndex.load(out)
    _no_leftovers(out)


def _limit_file_size() -> None:
    # Writing past the limit then fails with EFBIG instead of killing the process.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (2048, 2048))


def test_a_file_size_limit_in_a_real_process_is_one_line(tmp_path):
    out = tmp_path / "models" / "index"
    build_tiny_index(tmp_path / "first", k=4, out=out)
    new = write_studies(tmp_path / "new", TINY_STUDIES)
    command = [sys.executable, "-m", "recommender", "build", "--source", str(new),
               "--out", str(out), "-k", "2", "--quiet", "--jobs", "1"]  # fmt: skip
    done = subprocess.run(
        command, capture_output=True, text=True, preexec_fn=_limit_file_size, timeout=300
    )
    line = _one_line(done.stderr)
    assert done.returncode == EXIT_ENVIRONMENT, done.stderr
    assert "EFBIG" in line and "as it was" in line
    assert TrialIndex.load(out).meta["counts"]["k"] == 4
    _no_leftovers(out)


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder no file can be created in: chmod for users, the immutable flag for root."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    as_root = os.geteuid() == 0
    if as_root:
        if shutil.which("chattr") is None:
            pytest.skip("root ignores permissions, and chattr is not installed")
        done = subprocess.run(["chattr", "+i", str(folder)], capture_output=True)
        if done.returncode != 0:
            pytest.skip(f"cannot make a folder immutable here: {done.stderr.decode().strip()}")
    else:
        folder.chmod(0o555)
    try:
        yield folder
    finally:
        if as_root:
            subprocess.run(["chattr", "-i", str(folder)], check=False)
        else:
            folder.chmod(0o755)


def test_a_read_only_output_folder_fails_before_reading(read_only_folder, tmp_path, capsys):
    source = write_studies(tmp_path / "studies")
    out = read_only_folder / "index"
    code = main(["build", "--source", str(source), "--out", str(out), "--quiet"])
    line = _one_line(capsys.readouterr().err)
    assert code == EXIT_ENVIRONMENT
    assert ("permission denied" in line or "not permitted" in line) and str(out.parent) in line


def test_an_update_writing_into_a_read_only_folder(read_only_folder, tmp_path, capsys):
    index = build_tiny_index(tmp_path / "built")
    new = write_studies(tmp_path / "new", TINY_STUDIES[:1])
    code = main(["update", "--index", str(index), "--source", str(new),
                 "--out", str(read_only_folder / "index"), "--quiet"])  # fmt: skip
    assert code == EXIT_ENVIRONMENT
    _one_line(capsys.readouterr().err)


def test_an_output_path_through_a_file_is_one_line(tmp_path, capsys):
    source = write_studies(tmp_path / "studies")
    (tmp_path / "a-file").write_text("")
    code = main(["build", "--source", str(source), "--out", str(tmp_path / "a-file" / "index")])
    line = _one_line(capsys.readouterr().err)
    assert code == EXIT_ENVIRONMENT and "ENOTDIR" in line and "a-file" in line


def test_an_export_into_a_read_only_or_missing_folder_is_one_line(
    read_only_folder, tmp_path, capsys
):
    index = build_tiny_index(tmp_path / "built")
    code = main(["export", "--index", str(index), "--out", str(read_only_folder / "r.csv")])
    assert code == EXIT_ENVIRONMENT and str(read_only_folder) in _one_line(capsys.readouterr().err)
    # A folder that is not there is a mistyped path: bad input (2), as before.
    code = main(["export", "--index", str(index), "--out", str(tmp_path / "nowhere" / "r.csv")])
    assert code == 2 and "does not exist" in _one_line(capsys.readouterr().err)


def _killed(*args) -> None:
    os.kill(os.getpid(), signal.SIGKILL)  # as the OOM killer would


def test_a_worker_that_dies_is_one_line(tmp_path, capsys, monkeypatch):
    from recommender.ingest import parallel

    monkeypatch.setattr(parallel, "_read_files", _killed)
    monkeypatch.setattr(parallel, "RUN_ITEMS", 2)
    source = write_studies(tmp_path / "studies")
    code = main(["build", "--source", str(source), "--out", str(tmp_path / "index"),
                 "--jobs", "2", "--quiet"])  # fmt: skip
    line = _one_line(capsys.readouterr().err)
    assert code == EXIT_ENVIRONMENT and "a process reading it died" in line and "--jobs" in line


def test_running_out_of_memory_is_one_line(tmp_path, capsys, monkeypatch):
    from recommender.cli import build

    def out_of_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(build, "build_index", out_of_memory)
    source = write_studies(tmp_path / "studies")
    code = main(["build", "--source", str(source), "--out", str(tmp_path / "index")])
    line = _one_line(capsys.readouterr().err)
    assert code == EXIT_ENVIRONMENT and "out of memory" in line
