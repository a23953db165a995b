"""Size limits on input: a study file over ``max_file_bytes`` is refused unread, a text
over ``max_text_chars`` is cut; both are reported and the rest of the source is read."""

from __future__ import annotations

import json
import struct
import tracemalloc
import zipfile
from pathlib import Path

import pytest

from recommender.cli import EXIT_OK, main
from recommender.core import Intervention, TrialRecord
from recommender.ingest import ReadLimits, read_records
from recommender.ingest.limits import cap_texts, format_size, parse_size
from tests.factories import study_json, write_studies

MIB = 1024 * 1024
SMALL = ReadLimits(max_file_bytes=64 * 1024, max_text_chars=1_000)


def study_bytes(nct_id: str, summary: str = "Inhaled budesonide.") -> bytes:
    return json.dumps(study_json(nct_id, "Asthma trial", summary=summary)).encode()


def skipped(report) -> dict[str, str]:
    return {item.item: item.reason for item in report.skipped}


# --- files over the size limit -----------------------------------------------------------


def test_a_zip_member_over_the_limit_is_refused_before_it_is_decompressed(tmp_path: Path):
    path = tmp_path / "ctg-studies.json.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("NCT00000001.json", study_bytes("NCT00000001"))
        # 64 MiB of one byte deflates to about 64 KiB: a small zip, a large member.
        archive.writestr("NCT00000002.json", b" " * (64 * MIB))
        archive.writestr("NCT00000003.json", study_bytes("NCT00000003"))
    assert path.stat().st_size < MIB
    tracemalloc.start()
    try:
        records, report = read_records([path])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * MIB  # the member was never unpacked
    assert [r.nct_id for r in records] == ["NCT00000001", "NCT00000003"]
    assert skipped(report) == {
        "NCT00000002.json": "zip member of 64 MiB is over the limit of 16 MiB per study "
        "(--max-file-size); not read"
    }


def test_a_member_whose_header_understates_its_size_is_not_read_whole(tmp_path: Path):
    path = tmp_path / "lying.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("NCT00000001.json", study_bytes("NCT00000001", "x" * 200_000))
        archive.writestr("NCT00000002.json", study_bytes("NCT00000002"))
    raw = bytearray(path.read_bytes())
    # Declare 1,000 bytes unpacked, in the local header (offset 22) and the central
    # directory entry (offset 24) of the first member.
    raw[22:26] = struct.pack("<I", 1_000)
    central = raw.index(b"PK\x01\x02")
    raw[central + 24 : central + 28] = struct.pack("<I", 1_000)
    path.write_bytes(bytes(raw))
    records, report = read_records([path], limits=SMALL)
    assert [r.nct_id for r in records] == ["NCT00000002"]
    assert list(skipped(report)) == ["NCT00000001.json"]


def test_a_file_in_a_folder_over_the_limit_is_skipped_and_the_rest_read(tmp_path: Path):
    folder = write_studies(tmp_path / "studies")
    (folder / "NCT00000099.json").write_bytes(study_bytes("NCT00000099", "x" * 100_000))
    records, report = read_records([folder], limits=SMALL)
    assert len(records) == 9
    assert skipped(report) == {
        "NCT00000099.json": "file of 97.8 KiB is over the limit of 64 KiB per study "
        "(--max-file-size); not read"
    }


def test_an_xml_member_over_the_limit_is_skipped(tmp_path: Path):
    path = tmp_path / "AllPublicXML.zip"
    big = b"<clinical_study>" + b" " * (128 * 1024) + b"</clinical_study>"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("NCT0000xxxx/NCT00000001.xml", big)
    _, report = read_records([path], limits=SMALL)
    assert skipped(report)["NCT0000xxxx/NCT00000001.xml"].startswith(
        "zip member of 128 KiB is over the limit of 64 KiB"
    )


def test_a_jsonl_line_over_the_limit_is_skipped_and_the_next_lines_read(tmp_path: Path):
    path = tmp_path / "studies.jsonl"
    lines = [
        study_bytes("NCT00000001"),
        study_bytes("NCT00000002", "x" * 200_000),
        study_bytes("NCT00000003"),
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    records, report = read_records([path], limits=SMALL)
    assert [r.nct_id for r in records] == ["NCT00000001", "NCT00000003"]
    assert list(skipped(report)) == ["line 2"]
    assert "line of 195.5 KiB is over the limit of 64 KiB" in skipped(report)["line 2"]


def test_a_single_file_over_the_limit_is_a_skipped_item(tmp_path: Path):
    path = tmp_path / "NCT00000001.json"
    path.write_bytes(study_bytes("NCT00000001", "x" * 100_000))
    records, report = read_records([path], limits=SMALL)
    assert records == [] and list(skipped(report)) == ["NCT00000001.json"]


# --- texts over the length limit ---------------------------------------------------------


def test_a_long_text_is_cut_at_a_word_and_the_study_kept(tmp_path: Path):
    summary = "asthma inhaler " * 1_000  # 15,000 characters
    folder = tmp_path / "studies"
    folder.mkdir()
    (folder / "NCT00000001.json").write_bytes(study_bytes("NCT00000001", summary))
    (folder / "NCT00000002.json").write_bytes(study_bytes("NCT00000002"))
    records, report = read_records([folder], limits=SMALL)
    cut = records[0].brief_summary
    assert len(cut) <= 1_000 and summary.startswith(cut) and cut.endswith(("asthma", "inhaler"))
    assert records[1].brief_summary == "Inhaled budesonide."
    assert [(t.item, t.reason) for t in report.truncated] == [
        (
            "NCT00000001.json",
            "NCT00000001: cut to 1,000 characters (--max-text-chars): "
            "brief_summary (14,999 characters)",
        )
    ]
    assert report.skipped == []


def test_texts_inside_lists_and_interventions_are_cut_too():
    record = TrialRecord(
        "NCT00000001",
        conditions=("asthma", "a" * 50),
        interventions=(Intervention("budesonide", description="b" * 60),),
    )
    capped, cut = cap_texts(record, 40)
    assert capped.conditions == ("asthma", "a" * 40)
    assert capped.interventions[0].description == "b" * 40
    assert cut == ["conditions[1] (50 characters)", "interventions[0].description (60 characters)"]
    assert cap_texts(record, 100) == (record, [])


# --- the options ---------------------------------------------------------------------------


def test_build_options_are_applied_reported_and_recorded(tmp_path: Path, capsys):
    folder = write_studies(tmp_path / "studies")
    (folder / "NCT00000098.json").write_bytes(study_bytes("NCT00000098", "x" * 5_000))
    (folder / "NCT00000099.json").write_bytes(study_bytes("NCT00000099", "asthma " * 200))
    out = tmp_path / "ix"
    args = ["build", "--source", str(folder), "--out", str(out), "-k", "2", "--quiet",
            "--max-file-size", "4k", "--max-text-chars", "500"]  # fmt: skip
    assert main(args) == EXIT_OK
    printed = capsys.readouterr().out
    assert "skipped: 1" in printed and "over the limit of 4 KiB" in printed
    assert "texts cut to 500 characters: 1 studies" in printed
    report = json.loads((out / "build_report.json").read_text())
    assert report["limits"] == {"max_file_bytes": 4096, "max_text_chars": 500}
    assert [item["item"] for item in report["truncated"]] == ["NCT00000099.json"]
    assert [item["item"] for item in report["skipped"]] == ["NCT00000098.json"]
    meta = json.loads((out / "meta.json").read_text())
    assert meta["ingest"]["limits"] == {"max_file_bytes": 4096, "max_text_chars": 500}
    assert meta["ingest"]["truncated"] == 1


def test_default_limits_are_recorded(tmp_path: Path, capsys):
    folder = write_studies(tmp_path / "studies")
    out = tmp_path / "ix"
    assert main(["build", "--source", str(folder), "--out", str(out), "-k", "2", "--quiet"]) == 0
    report = json.loads((out / "build_report.json").read_text())
    assert report["limits"] == {"max_file_bytes": 16 * MIB, "max_text_chars": 100_000}


@pytest.mark.parametrize(
    "text, size",
    [("16M", 16 * MIB), ("16MiB", 16 * MIB), ("16 mb", 16 * MIB), ("500k", 512_000),
     ("1G", 1024**3), ("1.5M", int(1.5 * MIB)), ("1048576", MIB)],
)  # fmt: skip
def test_parse_size(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "lots", "16T", "0", "-1M"])
def test_parse_size_refuses(text):
    with pytest.raises(ValueError):
        parse_size(text)


def test_format_size_and_limit_checks():
    assert [format_size(n) for n in (512, 4096, 16 * MIB, 1288490189)] == [
        "512 bytes",
        "4 KiB",
        "16 MiB",
        "1.2 GiB",
    ]
    for bad in ({"max_file_bytes": 0}, {"max_text_chars": -5}, {"max_file_bytes": 1.5}):
        with pytest.raises(ValueError, match="must be a positive integer"):
            ReadLimits(**bad)


@pytest.mark.parametrize("option, value", [("--max-file-size", "lots"), ("--max-text-chars", "0")])
def test_bad_limit_options_exit_2(tmp_path: Path, capsys, option, value):
    with pytest.raises(SystemExit) as exc:
        main(["build", "--source", str(tmp_path), option, value])
    assert exc.value.code == 2
    assert option in capsys.readouterr().err
