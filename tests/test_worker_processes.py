"""No process outlives its command: a killed build or update takes its workers with it.

A forked copy of this process runs a build or an update in a process group of its
own and is killed by SIGKILL (``$RECOMMENDER_FAULT_AT``, :mod:`recommender.infra.faults`)
while its worker processes are busy: reading the sources, or learning abbreviations.
Before the fix two workers stayed behind for good, re-parented to init, one blocked
writing a result nobody reads and one waiting on a lock the dead parent held. Here
every member of the group must be gone within a few seconds.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from recommender.infra import FAULT_ENV, OrderedPool
from tests.factories import study_json

pytestmark = pytest.mark.skipif(
    not (hasattr(os, "fork") and Path("/proc/self/stat").exists()), reason="needs fork and /proc"
)

GONE_WITHIN = 5.0  # seconds


def _group_members(group: int) -> list[int]:
    """Pids of the processes in process group ``group``."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == group and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def survivors_of_a_kill(point: str, run: Callable[[], object]) -> list[int]:
    """Run ``run`` in a forked child, in a new process group, killed at ``point``;
    the pids of its group still alive ``GONE_WITHIN`` seconds after it died."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            os.setpgid(0, 0)
            os.environ[FAULT_ENV] = point
            run()
        finally:
            os._exit(7)  # reached only if the fault point was never hit
    try:
        _, status = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, (point, status)
        deadline = time.monotonic() + GONE_WITHIN
        while (left := _group_members(pid)) and time.monotonic() < deadline:
            time.sleep(0.05)
        return left
    finally:
        with contextlib.suppress(ProcessLookupError):  # what a failure left must not stay
            os.killpg(pid, signal.SIGKILL)


def _studies(n: int) -> list[dict]:
    words = ("liver", "asthma", "cancer", "sleep", "heart", "kidney", "stroke", "sepsis")
    return [
        study_json(
            f"NCT{i:08d}",
            f"Trial {i} of {words[i % 8]} and {words[(i * 5) % 8]} (ACLF)",
            summary=f"Acute-on-chronic liver failure (ACLF) study {i}. " + "text " * 200,
            conditions=(words[i % 8],),
        )
        for i in range(1, n + 1)
    ]


def _folder(tmp_path: Path, n: int = 120) -> Path:
    folder = tmp_path / "studies"
    folder.mkdir()
    for doc in _studies(n):
        nct_id = doc["protocolSection"]["identificationModule"]["nctId"]
        (folder / f"{nct_id}.json").write_text(json.dumps(doc))
    return folder


def _small_runs(monkeypatch) -> None:
    from recommender.ingest import parallel
    from recommender.text import record_texts

    monkeypatch.setattr(parallel, "RUN_ITEMS", 4)
    monkeypatch.setattr(parallel, "RUN_BYTES", 2000)
    monkeypatch.setattr(record_texts, "RUN_RECORDS", 4)


def _build(source: Path, out: Path) -> Callable[[], object]:
    from dataclasses import replace

    from recommender.pipelines import build_index
    from recommender.text import DEFAULT_FIELD_GROUPS

    groups = [replace(g, min_df=1, max_df=1.0) for g in DEFAULT_FIELD_GROUPS]
    return lambda: build_index([source], out, groups=groups, k=3, n_jobs=2)


@pytest.mark.parametrize("stage", ["read", "abbreviations"])
def test_a_build_killed_while_its_workers_run_leaves_no_process(tmp_path, monkeypatch, stage):
    _small_runs(monkeypatch)
    build = _build(_folder(tmp_path), tmp_path / "models" / "index")
    assert survivors_of_a_kill(f"{stage}-workers", build) == []


def _xml(nct_id: str, title: str) -> str:
    return (
        f"<clinical_study><id_info><nct_id>{nct_id}</nct_id></id_info>"
        f"<brief_title>{title}</brief_title><brief_summary><textblock>{'text ' * 200}"
        "</textblock></brief_summary></clinical_study>"
    )


def test_an_update_killed_reading_an_xml_zip_leaves_no_process(tmp_path, monkeypatch):
    from recommender.pipelines.update import update_index
    from tests.factories import build_tiny_index

    _small_runs(monkeypatch)
    index = build_tiny_index(tmp_path / "built")
    source = tmp_path / "AllPublicXML.zip"
    with zipfile.ZipFile(source, "w", zipfile.ZIP_DEFLATED) as archive:
        for i in range(20, 140):
            archive.writestr(f"NCT0000xxxx/NCT{i:08d}.xml", _xml(f"NCT{i:08d}", f"Trial {i}"))
    update = lambda: update_index(index, [source], n_jobs=2)  # noqa: E731
    assert survivors_of_a_kill("read-workers", update) == []


def _slow_square(x: int) -> int:
    time.sleep(0.2)
    return x * x


def test_a_pool_whose_parent_is_killed_ends_its_workers():
    def run() -> None:
        with OrderedPool(2, "a test pool", stage="test") as pool:
            for _ in pool.results((_slow_square, (i,)) for i in range(50)):
                pass

    assert survivors_of_a_kill("test-workers", run) == []


def test_workers_of_a_pool_started_off_the_main_thread_end_too():
    # No kernel signal then (it would follow the thread): the workers' watch ends them.
    def run() -> None:
        def in_thread() -> None:
            with OrderedPool(2, "a test pool", stage="test") as pool:
                for _ in pool.results((_slow_square, (i,)) for i in range(50)):
                    pass

        thread = threading.Thread(target=in_thread)
        thread.start()
        thread.join()

    assert survivors_of_a_kill("test-workers", run) == []


def test_a_pool_works_as_before():
    with OrderedPool(2, "a test pool") as pool:
        assert list(pool.results((_slow_square, (i,)) for i in range(6))) == [
            i * i for i in range(6)
        ]
