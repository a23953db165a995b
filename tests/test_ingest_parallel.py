"""A source read by several processes gives the outcomes of a read by one."""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recommender.core import RecordLine
from recommender.ingest import IngestReport, RecordError, iter_records, parallel, spool_records
from recommender.ingest.containers import _read_directly, read_member
from recommender.ingest.ctgov_json import iter_json_dir, iter_json_zip, iter_jsonl
from recommender.ingest.ctgov_xml import iter_xml_zip
from recommender.ingest.limits import ReadLimits
from tests.test_ingest_json import FULL_STUDY, study
from tests.test_ingest_xml import FULL_XML

LIMITS = ReadLimits(max_file_bytes=4000, max_text_chars=1000)


@pytest.fixture(autouse=True)
def small_runs(monkeypatch):
    # Runs of a few items, so that a small source is cut into many.
    monkeypatch.setattr(parallel, "RUN_ITEMS", 3)
    monkeypatch.setattr(parallel, "RUN_BYTES", 200)


def comparable(prepared):
    """Prepared outcomes with errors as (type, message), which compare by value."""
    return [
        (item, (type(r).__name__, str(r)) if isinstance(r, RecordError) else r, cut)
        for item, r, cut in prepared
    ]


def read_both_ways(path: Path, fmt: str, serial) -> tuple[list, list]:
    runs = parallel.several(parallel.read_runs(path, fmt, LIMITS))
    assert runs is not None, "the source must be cut into several runs"
    one = [parallel.prepare(outcome, LIMITS) for outcome in serial(path, LIMITS)]
    return comparable(one), comparable(parallel.parallel_outcomes(path, runs, 2))


def studies(n: int) -> list[dict]:
    return [study(f"NCT{i:08d}", title=f"Trial {i} of (ACLF) x") for i in range(1, n + 1)]


def test_a_json_zip_read_in_parallel_equals_the_serial_read(tmp_path):
    path = tmp_path / "studies.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for i, doc in enumerate(studies(14)):
            archive.writestr(f"NCT{i + 1:08d}.json", json.dumps(doc))
        archive.writestr("full.json", json.dumps(FULL_STUDY))
        archive.writestr("page.json", json.dumps({"studies": studies(3)}))
        archive.writestr("bad.json", "{not json")
        archive.writestr("labels.json", json.dumps({"NCT00000001": ["NCT00000002"]}))
        archive.writestr("huge.json", json.dumps(study("NCT09999999", title="x" * 5000)))
        archive.writestr("stored.json", json.dumps(study("NCT08888888")), zipfile.ZIP_STORED)
        archive.writestr("long.json", json.dumps(study("NCT06666666", title="word " * 300)))
        # Left to zipfile's own reader, in a worker too.
        archive.writestr("bz.json", json.dumps(study("NCT05555555")), zipfile.ZIP_BZIP2)
    serial, shared = read_both_ways(path, "json-zip", iter_json_zip)
    assert shared == serial
    errors = {item: error for item, error, _ in serial if isinstance(error, tuple)}
    assert [cut for item, _, cut in serial if item == "long.json"] == [
        ["brief_title (1,499 characters)"]
    ]
    assert len(serial) == 24
    assert [r.nct_id for item, r, _ in serial if item == "bz.json"] == ["NCT05555555"]
    assert sorted(errors) == ["bad.json", "huge.json", "labels.json"]
    assert errors["labels.json"][0] == "NotAStudyError"


def test_a_corrupt_member_is_the_same_skipped_item_either_way(tmp_path):
    path = tmp_path / "studies.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for i, doc in enumerate(studies(7)):
            archive.writestr(f"{i}.json", json.dumps(doc))
        archive.writestr("b.json", json.dumps(study("NCT00000099", title="Corrupt me")))
    path.write_bytes(path.read_bytes().replace(b"Corrupt me", b"Corrupt ME"))
    serial, shared = read_both_ways(path, "json-zip", iter_json_zip)
    assert shared == serial
    assert serial[-1][1][1].startswith("unreadable zip member: Bad CRC-32")


def test_an_xml_zip_read_in_parallel_equals_the_serial_read(tmp_path):
    path = tmp_path / "studies.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for i in range(8):
            archive.writestr(f"NCT{i:08d}.xml", FULL_XML.replace("NCT01234567", f"NCT{i:08d}"))
        archive.writestr("broken.xml", "<clinical_study><nct_id>")
    serial, shared = read_both_ways(path, "xml-zip", iter_xml_zip)
    assert shared == serial
    assert len(serial) == 9


def test_a_folder_read_in_parallel_equals_the_serial_read(tmp_path):
    for i, doc in enumerate(studies(10)):
        folder = tmp_path / f"part{i % 3}"
        folder.mkdir(exist_ok=True)
        (folder / f"NCT{i + 1:08d}.json").write_text(json.dumps(doc))
    (tmp_path / "notes.json").write_text("[1, 2]")
    serial, shared = read_both_ways(tmp_path, "json-dir", iter_json_dir)
    assert shared == serial
    assert len(serial) == 12


def test_json_lines_read_in_parallel_equal_the_serial_read(tmp_path):
    lines = [json.dumps(doc) for doc in studies(12)]
    lines[3] = ""  # blank: not an item
    lines[5] = "{broken"
    lines[7] = json.dumps(study("NCT07777777", title="x" * 5000))  # over the limit
    lines[9] = json.dumps(studies(2))  # a list of two
    path = tmp_path / "studies.jsonl"
    path.write_text("\n".join(lines))  # no newline after the last line
    serial, shared = read_both_ways(path, "jsonl", iter_jsonl)
    assert shared == serial
    assert [item for item, _, _ in serial][6:10] == ["line 8", "line 9", "line 10[0]", "line 10[1]"]


@settings(max_examples=100, deadline=None, derandomize=True)
@given(
    lengths=st.lists(st.integers(0, 30), max_size=40),
    ends_with_newline=st.booleans(),
    run_bytes=st.integers(1, 80),
)
def test_json_lines_runs_cover_the_file_in_whole_lines(
    tmp_path_factory, lengths, ends_with_newline, run_bytes
):
    text = "\n".join("x" * n for n in lengths) + ("\n" if ends_with_newline and lengths else "")
    path = tmp_path_factory.mktemp("runs") / "lines.jsonl"
    path.write_bytes(text.encode())
    runs = list(parallel.jsonl_runs(path, run_bytes))
    if not text:
        assert runs == []
        return
    assert [start for start, _, _ in runs] == [0] + [stop for _, stop, _ in runs[:-1]]
    assert (runs[-1][1] if runs else 0) == len(text)
    for start, stop, first_line in runs:
        assert start == 0 or text[start - 1] == "\n"  # a run starts a line
        assert first_line == text.count("\n", 0, start) + 1
        assert stop - start >= run_bytes or stop == len(text)


def test_a_build_reads_the_same_records_on_several_processes(tmp_path):
    path = tmp_path / "studies.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for i, doc in enumerate(studies(20)):
            archive.writestr(f"NCT{i + 1:08d}.json", json.dumps(doc))
    one, two = IngestReport(limits=LIMITS), IngestReport(limits=LIMITS)
    records = list(iter_records([path], one, n_jobs=1))
    spool = tmp_path / "spool"
    spool.mkdir()
    lines = list(iter_records([path], two, n_jobs=2, spool=spool))
    # Written by the workers, into files of the spool: never sent to this process.
    assert all(isinstance(line, RecordLine) for line in lines)
    assert {Path(line.path).parent for line in lines} == {spool}
    assert vars(one) == vars(two)
    spooled, _ = spool_records([*lines, records[0]], spool)  # lines and records mixed
    assert list(spooled) == records
    assert sorted(p.name for p in spool.iterdir()) == ["records.jsonl", "records.offsets.npy"]


def _die(*_args):
    os._exit(3)


def test_a_worker_that_dies_is_a_clear_error(tmp_path, monkeypatch):
    path = tmp_path / "studies.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for i, doc in enumerate(studies(9)):
            archive.writestr(f"{i}.json", json.dumps(doc))
    monkeypatch.setattr(parallel, "_read_members", _die)  # the forked workers see it too
    runs = parallel.several(parallel.read_runs(path, "json-zip", LIMITS))
    with pytest.raises(RuntimeError, match="a process reading it died"):
        list(parallel.parallel_outcomes(path, runs, 2))


def test_a_small_source_is_not_worth_a_pool(tmp_path):
    path = tmp_path / "studies.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a.json", json.dumps(study("NCT00000001")))
    assert parallel.several(parallel.read_runs(path, "json-zip", LIMITS)) is None


# --- members read straight from the file ------------------------------------------------


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
@pytest.mark.parametrize("max_bytes", [10, 99, 100, 5000])
def test_a_member_read_directly_equals_zipfiles_read(tmp_path, compression, max_bytes):
    path = tmp_path / "a.zip"
    with zipfile.ZipFile(path, "w", compression) as archive:
        archive.writestr("a.json", b"0123456789" * 10)
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("a.json")
        with archive.open(info) as member:
            expected = member.read(max_bytes + 1)
        assert _read_directly(archive.fp, info, max_bytes) == expected


def test_members_zipfile_must_read_are_left_to_it(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_BZIP2) as archive:
        archive.writestr("a.json", b"{}" * 50)
    with zipfile.ZipFile(buffer) as archive:
        info = archive.getinfo("a.json")
        assert _read_directly(archive.fp, info, 1000) is None  # in memory, and bzip2
        assert read_member(archive, info, 1000) == b"{}" * 50


def test_a_damaged_local_header_is_an_unreadable_member(tmp_path):
    path = tmp_path / "a.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a.json", b"{}" * 50)
    raw = bytearray(path.read_bytes())
    raw[0:4] = b"XXXX"  # the first local header's magic
    path.write_bytes(bytes(raw))
    with zipfile.ZipFile(path) as archive:
        result = read_member(archive, archive.getinfo("a.json"), 1000)
    assert isinstance(result, RecordError)
    assert str(result) == "unreadable zip member: Bad magic number for file header"
