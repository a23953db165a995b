"""`recommender build --if-changed`: skip a build that would change nothing, never
keep an index built from other sources or with other parameters."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from recommender.cli import EXIT_OK, main
from recommender.ingest import ReadLimits
from recommender.pipelines import check_index
from tests.factories import TINY_STUDIES, write_studies

REPO = Path(__file__).resolve().parents[1]


def build(sources, out, *extra):
    args = ["build", "--if-changed", "--out", str(out), "-k", "3", "--quiet", "--jobs", "1"]
    return main([*args, *(f"--source={s}" for s in sources), *extra])


def built_at(index: Path) -> str:
    return json.loads((index / "meta.json").read_text())["built_at"] + str(
        (index / "meta.json").stat().st_mtime_ns
    )


def test_same_build_is_skipped_and_a_changed_source_list_rebuilds(tmp_path, capsys):
    source, index = write_studies(tmp_path / "studies"), tmp_path / "index"
    assert build([source], index) == EXIT_OK
    assert "no index there yet" in capsys.readouterr().err
    first = built_at(index)

    assert build([source], index) == EXIT_OK
    out = capsys.readouterr().out
    assert out.startswith(f"index at {index} is current (built ")
    assert built_at(index) == first

    more = write_studies(tmp_path / "more", TINY_STUDIES[:2])
    assert build([source, more], index) == EXIT_OK
    assert "it was built from" in capsys.readouterr().err
    assert built_at(index) != first
    assert len(json.loads((index / "meta.json").read_text())["sources"]) == 2


def test_changed_parameters_rebuild(tmp_path, capsys):
    source, index = write_studies(tmp_path / "studies"), tmp_path / "index"
    assert build([source], index) == EXIT_OK
    assert build([source], index, "-k", "4") == EXIT_OK
    assert "its k is 3, not 4" in capsys.readouterr().err
    assert build([source], index, "-k", "4", "--max-text-chars", "500") == EXIT_OK
    assert "its read limits" in capsys.readouterr().err
    assert json.loads((index / "meta.json").read_text())["counts"]["k"] == 4


def test_content_change_of_the_same_size_is_found_by_its_hash(tmp_path, capsys):
    source, index = write_studies(tmp_path / "studies"), tmp_path / "index"
    assert build([source], index) == EXIT_OK
    study = source / "NCT00000001.json"
    text = study.read_text()
    study.write_text(text.replace("a", "e", 1))  # same size, other content
    later = os.stat(index / "meta.json").st_mtime + 10
    os.utime(study, (later, later))
    assert build([source], index) == EXIT_OK
    assert "differs from" in capsys.readouterr().err


def test_the_same_content_elsewhere_is_current(tmp_path):
    source, index = write_studies(tmp_path / "studies"), tmp_path / "index"
    assert build([source], index) == EXIT_OK
    copy = shutil.copytree(source, tmp_path / "copy")
    check = check_index(index, [copy], k=3, neighbour_method="pruned", limits=ReadLimits())
    assert check.current, check.reason


def test_a_damaged_or_foreign_folder_is_not_current(tmp_path):
    folder = tmp_path / "index"
    folder.mkdir()
    (folder / "meta.json").write_text("{not json")
    check = check_index(folder, [tmp_path], k=3, neighbour_method="pruned", limits=ReadLimits())
    assert not check.current and "unreadable" in check.reason


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_index_always_asks_build_if_changed(tmp_path):
    """The Makefile's index target is phony and calls --if-changed: a new
    RECOMMENDER_DATA is never served from an index make thinks is up to date."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "ctg-studies.json.zip").write_bytes(b"")
    index = tmp_path / "index"
    index.mkdir()
    (index / "meta.json").write_text("{}")  # newer than any source: make must not care
    dry_run = subprocess.run(
        ["make", "-n", "index", f"RECOMMENDER_DATA={tmp_path / 'data'}", f"INDEX={index}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "build --if-changed" in dry_run
    assert f"--source {tmp_path / 'data'}/ctg-studies.json.zip" in dry_run


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_serve_installs_only_the_runtime_and_make_test_adds_dev(tmp_path):
    def dry_run(target):
        return subprocess.run(
            ["make", "-n", target, f"VENV={tmp_path / 'venv'}", f"INDEX={tmp_path / 'ix'}"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    serve = dry_run("serve")
    assert "pip install --quiet -e .\n" in serve and "[dev]" not in serve
    assert "pip install --quiet -e '.[dev]'" in dry_run("test")


def test_an_updated_index_of_the_same_sources_is_kept(tmp_path, capsys):
    """`recommender update` adds studies to an index; a later `make serve` (build
    --if-changed of the same sources) must not throw them away."""
    source, index = write_studies(tmp_path / "studies", TINY_STUDIES[:6]), tmp_path / "index"
    assert build([source], index) == EXIT_OK
    new = write_studies(tmp_path / "new", TINY_STUDIES[6:])
    assert main(["update", "--index", str(index), "--source", str(new), "--quiet"]) == EXIT_OK
    updated = built_at(index)
    capsys.readouterr()
    assert build([source], index) == EXIT_OK
    assert "is current" in capsys.readouterr().out
    assert built_at(index) == updated


def test_a_source_changed_before_an_update_is_not_trusted_by_its_time(tmp_path):
    """After `recommender update`, built_at is the update's time; a source modified
    between the full build and the update must still be hashed."""
    from datetime import datetime, timedelta

    source, index = write_studies(tmp_path / "studies"), tmp_path / "index"
    assert build([source], index) == EXIT_OK
    meta = json.loads((index / "meta.json").read_text())
    full_built = datetime.fromisoformat(meta["built_at"])
    meta["full_build"] = {"built_at": meta["built_at"], "studies": 9}
    meta["built_at"] = (full_built + timedelta(hours=2)).isoformat()  # the update
    (index / "meta.json").write_text(json.dumps(meta))
    study = source / "NCT00000001.json"
    study.write_text(study.read_text().replace("a", "e", 1))  # same size
    between = (full_built + timedelta(hours=1)).timestamp()
    os.utime(study, (between, between))
    check = check_index(index, [source], k=3, neighbour_method="pruned", limits=ReadLimits())
    assert not check.current and "SHA-256" in check.reason
