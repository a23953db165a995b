"""Writers to one index are serialised or refused, never lost (issue 27).

A build is held in the middle of its work (``$RECOMMENDER_PAUSE_AT`` stops a forked
copy of this process at a point, :mod:`recommender.infra.faults`) while an update or a
second build runs on the same index. Before the fix both ran: the build published
after the update and the update's studies were gone, both commands exiting 0.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from recommender.index import (
    IndexBusyError,
    IndexChangedError,
    Staging,
    TrialIndex,
    WriterLock,
    versions,
    versions_folder,
)
from recommender.infra import FAULT_ENV, PAUSE_ENV
from tests.factories import build_tiny_index, study_json, write_studies

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")

NEW_ID = "NCT00000042"


@pytest.fixture
def served(tmp_path) -> Path:
    out = tmp_path / "models" / "index"
    build_tiny_index(tmp_path / "first", k=4, out=out)
    return out


@pytest.fixture
def new_studies(tmp_path) -> Path:
    study = study_json(NEW_ID, "Budesonide inhaler for asthma in adults", conditions=("Asthma",))
    return write_studies(tmp_path / "new", [study])


def _in_child(run, env: dict[str, str]) -> int:
    """Fork; the child sets ``env`` and runs ``run``, exiting 0, or 3 on an exception."""
    pid = os.fork()
    if pid == 0:
        code = 3
        try:
            os.environ.update(env)
            run()
            code = 0
        finally:
            os._exit(code)
    return pid


def _paused_build(tmp_path: Path, out: Path, point: str = "read", k: int = 3) -> int:
    """A build of ``out`` in a child, stopped at ``point`` (its writer lock held)."""
    build = lambda: build_tiny_index(tmp_path / f"child-k{k}", k=k, out=out)  # noqa: E731
    pid = _in_child(build, {PAUSE_ENV: point})
    _, status = os.waitpid(pid, os.WUNTRACED)
    assert os.WIFSTOPPED(status), status
    return pid


def _finish(pid: int, timeout: float = 120) -> int:
    """Continue a stopped child and wait for it; its exit code."""
    os.kill(pid, signal.SIGCONT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    raise TimeoutError(f"child {pid} did not finish")


def _update(served: Path, new: Path, **options):
    from recommender.pipelines.update import update_index

    return update_index(served, [new], n_jobs=1, **options)


def test_an_update_during_a_build_is_refused_naming_the_build(tmp_path, served, new_studies):
    builder = _paused_build(tmp_path, served)
    try:
        with pytest.raises(IndexBusyError) as refused:
            _update(served, new_studies)
    finally:
        assert _finish(builder) == 0
    message = str(refused.value)
    assert "recommender build" in message and f"pid {builder}" in message
    assert "--wait" in message
    assert TrialIndex.load(served).meta["counts"]["k"] == 3  # the build's, complete


def test_an_update_that_waits_runs_after_the_build_and_is_kept(tmp_path, served, new_studies):
    builder = _paused_build(tmp_path, served)
    updater = _in_child(lambda: _update(served, new_studies, wait=True), {})
    time.sleep(1.0)
    assert os.waitpid(updater, os.WNOHANG) == (0, 0), "the update must wait for the build"
    assert _finish(builder) == 0
    assert _finish(updater) == 0
    index = TrialIndex.load(served)
    assert NEW_ID in index and index.meta["counts"]["k"] == 3  # the build's, then the update


def test_a_second_build_is_refused_while_the_first_runs(tmp_path, served):
    first = _paused_build(tmp_path, served, k=3)
    try:
        with pytest.raises(IndexBusyError, match=f"recommender build \\(pid {first}"):
            build_tiny_index(tmp_path / "second", k=2, out=served)
    finally:
        assert _finish(first) == 0
    assert TrialIndex.load(served).meta["counts"]["k"] == 3


def test_the_cli_refuses_with_exit_4_and_one_line(tmp_path, served, new_studies, capsys):
    from recommender.cli import EXIT_BUSY, main

    with WriterLock(served, "build"):
        code = main(["update", "--index", str(served), "--source", str(new_studies), "--quiet"])
    assert code == EXIT_BUSY == 4
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "is being written by recommender build" in err
    assert NEW_ID not in TrialIndex.load(served)


def test_the_cli_waits_with_a_message_when_asked(tmp_path, served, new_studies, capsys):
    import threading

    from recommender.cli import main

    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with WriterLock(served, "build"):
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(10)
    threading.Timer(1.0, release.set).start()
    code = main(["update", "--index", str(served), "--source", str(new_studies), "--wait"])
    holder.join()
    assert code == 0
    assert "waiting for recommender build" in capsys.readouterr().err
    assert NEW_ID in TrialIndex.load(served)


def _swap_in_another_version(served: Path, tmp_path: Path) -> None:
    """Publish a version without the writer lock: another host, or a swap by hand."""
    other = build_tiny_index(tmp_path / "elsewhere", k=1)
    with Staging(served) as staging:
        for path in Path(os.path.realpath(other)).iterdir():
            (staging.folder / path.name).write_bytes(path.read_bytes())
        staging.publish()


@pytest.mark.parametrize("writer", ["update", "build"])
def test_a_writer_never_publishes_over_a_version_it_did_not_start_from(
    tmp_path, served, new_studies, monkeypatch, writer
):
    from recommender.index import save

    def bypass_at_write(name: str) -> None:
        if name == "write":
            monkeypatch.setattr(save, "fault_point", lambda name: None)
            _swap_in_another_version(served, tmp_path)

    monkeypatch.setattr(save, "fault_point", bypass_at_write)
    with pytest.raises(IndexChangedError, match="nothing was replaced"):
        if writer == "update":
            _update(served, new_studies)
        else:
            build_tiny_index(tmp_path / "rebuild", k=2, out=served)
    assert TrialIndex.load(served).meta["counts"]["k"] == 1  # the bypassing writer's
    assert not [p for p in versions_folder(served).iterdir() if p.name.startswith(".tmp-")]


def test_a_no_op_update_removes_what_an_update_killed_at_its_last_step_left(
    tmp_path, served, new_studies
):
    pid = _in_child(lambda: _update(served, new_studies), {FAULT_ENV: "swapped"})
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    assert [p.name for p in versions_folder(served).glob(".tmp-*.owner")]
    summary = _update(served, new_studies)  # nothing new: writes nothing
    assert not summary.written
    assert not list(versions_folder(served).glob(".tmp-*"))


def test_the_lock_names_its_holder_and_is_free_again_after(served):
    with WriterLock(served, "update") as lock:
        facts = json.loads((versions_folder(served) / ".writer").read_text())
        assert facts["command"] == "update" and facts["pid"] == os.getpid()
        assert lock.expected == versions.served_version(served)
    with WriterLock(served, "build"):
        pass  # taken again: released on leaving


def test_an_update_of_a_missing_index_creates_nothing(tmp_path, new_studies):
    from recommender.index import DamagedIndexError

    with pytest.raises(DamagedIndexError, match="no index at"):
        _update(tmp_path / "typo" / "index", new_studies)
    assert not (tmp_path / "typo").exists()
