"""Public entry points: format detection, multi-source reading, the ingest report."""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import pytest

from recommender.ingest import (
    FORMATS,
    IngestReport,
    SkippedItem,
    SourceError,
    SourceSummary,
    detect_format,
    iter_source,
    read_records,
)


def study(nct_id: str, title: str = "A title") -> dict:
    """A minimal API v2 study."""
    return {"protocolSection": {"identificationModule": {"nctId": nct_id, "briefTitle": title}}}


def xml_study(nct_id: str, title: str = "A title") -> str:
    """A minimal legacy XML record."""
    return (
        f"<clinical_study><id_info><nct_id>{nct_id}</nct_id></id_info>"
        f"<brief_title>{title}</brief_title></clinical_study>"
    )


def write_json_zip(path: Path, studies: dict[str, object]) -> Path:
    """A zip with one member per ``{name: study}`` (a str is written as is)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in studies.items():
            archive.writestr(name, content if isinstance(content, str) else json.dumps(content))
    return path


@pytest.fixture
def sources(tmp_path: Path) -> dict[str, Path]:
    """One small source of every kind, each with at least one bad item."""
    json_zip = write_json_zip(
        tmp_path / "ctg-studies.json.zip",
        {
            "NCT00000001.json": study("NCT00000001", "zip 1"),
            "NCT00000002.json": study("NCT00000002", "zip 2"),
            "NCT00000003.json": "{broken",
        },
    )
    xml_zip = tmp_path / "AllPublicXML.zip"
    with zipfile.ZipFile(xml_zip, "w") as archive:
        archive.writestr("NCT0000xxxx/NCT00000002.xml", xml_study("NCT00000002", "xml 2"))
        archive.writestr("NCT0000xxxx/NCT00000009.xml", "<clinical_study>")
    folder = tmp_path / "seed-cluster"
    folder.mkdir()
    (folder / "NCT00000001.json").write_text(json.dumps(study("NCT00000001", "folder 1")))
    (folder / "expected_related.json").write_text(json.dumps({"NCT00000001": []}))
    (folder / "NCT00000001.page.txt").write_text("a page")
    jsonl = tmp_path / "studies.ndjson"
    jsonl.write_text(json.dumps(study("NCT00000004", "line 1")) + "\n" + '{"nope": 1}\n')
    return {"json-zip": json_zip, "xml-zip": xml_zip, "json-dir": folder, "jsonl": jsonl}


# --- detect_format -------------------------------------------------------------------------


def test_detect_format_of_every_kind(tmp_path: Path, sources: dict[str, Path]) -> None:
    for fmt, path in sources.items():
        assert detect_format(path) == fmt
    (tmp_path / "one.JSON").write_text("{}")
    (tmp_path / "one.xml").write_text("<x/>")
    (tmp_path / "lines.jsonl").write_text("")
    xml_dir = tmp_path / "xml"
    (xml_dir / "NCT0000xxxx").mkdir(parents=True)
    (xml_dir / "NCT0000xxxx" / "NCT00000102.xml").write_text(xml_study("NCT00000102"))
    assert detect_format(tmp_path / "one.JSON") == "json"
    assert detect_format(str(tmp_path / "one.xml")) == "xml"
    assert detect_format(tmp_path / "lines.jsonl") == "jsonl"
    assert detect_format(xml_dir) == "xml-dir"
    assert detect_format(tmp_path) == "json+xml-dir"  # holds .json and (nested) .xml files


def test_zip_holding_json_and_xml_reads_both(tmp_path: Path) -> None:
    path = write_json_zip(
        tmp_path / "mixed.zip",
        {"b/NCT00000001.xml": xml_study("NCT00000001", "xml"), "a.json": study("NCT00000001")},
    )
    assert detect_format(path) == "json+xml-zip"
    records, report = read_records([path])
    assert [(r.nct_id, r.brief_title) for r in records] == [("NCT00000001", "xml")]
    assert (report.sources[0].read, report.replaced) == (2, 1)


def test_detect_format_values_are_the_documented_ones() -> None:
    assert set(FORMATS) == {
        "json-zip",
        "xml-zip",
        "json+xml-zip",
        "json-dir",
        "xml-dir",
        "json+xml-dir",
        "jsonl",
        "json",
        "xml",
    }


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("absent.zip", None, "no such file or folder"),
        ("studies.csv", "nct_id\n", "unknown registry format"),
        ("studies", "no suffix", "unknown registry format"),
        ("corrupt.zip", "PK\x03\x04garbage", "not a readable zip archive"),
        ("empty-folder", "<dir>", "dir holds no .json or .xml files"),
    ],
)
def test_detect_format_errors(tmp_path: Path, name: str, content: str | None, message: str) -> None:
    path = tmp_path / name
    if content == "<dir>":
        path.mkdir()
        (path / "README.md").write_text("nothing to read")
    elif content is not None:
        path.write_text(content)
    with pytest.raises(SourceError, match=re.escape(message)):
        detect_format(path)


def test_zip_without_studies_is_a_source_error(tmp_path: Path) -> None:
    path = write_json_zip(tmp_path / "other.zip", {"notes.txt": "hello"})
    with pytest.raises(SourceError, match=re.escape("zip holds no .json or .xml members")):
        detect_format(path)


def test_source_error_is_a_value_error() -> None:
    assert issubclass(SourceError, ValueError)


# --- read_records --------------------------------------------------------------------------


def test_read_records_last_source_wins_and_reports_everything(sources: dict[str, Path]) -> None:
    order = [sources["json-zip"], sources["xml-zip"], sources["json-dir"], sources["jsonl"]]
    records, report = read_records(order)
    assert [(r.nct_id, r.brief_title) for r in records] == [
        ("NCT00000001", "folder 1"),
        ("NCT00000002", "xml 2"),
        ("NCT00000004", "line 1"),
    ]
    assert report.replaced == 2
    assert report.studies == 3
    assert report.sources == [
        SourceSummary(str(sources["json-zip"]), "json-zip", read=2, skipped=1),
        SourceSummary(str(sources["xml-zip"]), "xml-zip", read=1, skipped=1),
        SourceSummary(str(sources["json-dir"]), "json-dir", read=1, skipped=0, ignored=1),
        SourceSummary(str(sources["jsonl"]), "jsonl", read=1, skipped=1),
    ]
    skipped = [(Path(s.source).name, s.item, s.reason.split(":")[0]) for s in report.skipped]
    assert skipped == [
        ("ctg-studies.json.zip", "NCT00000003.json", "invalid JSON"),
        ("AllPublicXML.zip", "NCT0000xxxx/NCT00000009.xml", "invalid XML"),
        ("studies.ndjson", "line 2", "not a study"),  # a line of studies: a failure
    ]
    # A label file beside the studies is noted, not counted as a failure.
    ignored = [(Path(s.source).name, s.item, s.reason.split(":")[0]) for s in report.ignored]
    assert ignored == [("seed-cluster", "expected_related.json", "not a study")]


def test_read_records_order_decides_the_winner(sources: dict[str, Path]) -> None:
    records, report = read_records([sources["json-dir"], sources["json-zip"]])
    assert {r.nct_id: r.brief_title for r in records}["NCT00000001"] == "zip 1"
    assert report.replaced == 1


def test_duplicates_within_one_source_last_wins(tmp_path: Path) -> None:
    path = tmp_path / "dupes.jsonl"
    lines = [study("NCT00000002", "first"), study("NCT00000001"), study("NCT00000002", "second")]
    path.write_text("\n".join(json.dumps(line) for line in lines))
    records, report = read_records([path])
    assert [(r.nct_id, r.brief_title) for r in records] == [
        ("NCT00000001", "A title"),
        ("NCT00000002", "second"),
    ]
    assert (report.replaced, report.studies, report.sources[0].read) == (1, 2, 3)


def test_folder_with_json_and_xml_reads_both(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps(study("NCT00000001", "json")))
    (tmp_path / "b.xml").write_text(xml_study("NCT00000001", "xml"))
    (tmp_path / "c.xml").write_text(xml_study("NCT00000003"))
    records, report = read_records([tmp_path])
    assert [(r.nct_id, r.brief_title) for r in records] == [
        ("NCT00000001", "xml"),  # JSON files are read first, so XML wins a tie
        ("NCT00000003", "A title"),
    ]
    assert report.sources == [SourceSummary(str(tmp_path), "json+xml-dir", read=3, skipped=0)]
    assert report.replaced == 1


def test_every_source_is_checked_before_any_is_read(
    sources: dict[str, Path], tmp_path: Path
) -> None:
    with pytest.raises(SourceError, match=re.escape("absent.zip: no such file or folder")):
        read_records([sources["json-zip"], tmp_path / "absent.zip"])


def test_a_single_path_is_accepted(sources: dict[str, Path]) -> None:
    records, _ = read_records(str(sources["jsonl"]))
    assert [r.nct_id for r in records] == ["NCT00000004"]


def test_no_sources_read_nothing() -> None:
    assert read_records([]) == ([], IngestReport())


def test_progress_bar_goes_to_stderr(
    sources: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    read_records([sources["json-zip"]], progress=True)
    captured = capsys.readouterr()
    assert captured.out == ""
    # Not a terminal: one plain line for the source, no bar redrawn with \r.
    assert captured.err.startswith("ctg-studies.json.zip: 3 items in ")
    assert "\r" not in captured.err


# --- iter_source and the report ----------------------------------------------------------


def test_iter_source_streams_and_fills_the_report(sources: dict[str, Path]) -> None:
    report = IngestReport()
    records = list(iter_source(sources["json-zip"], report))
    assert [r.nct_id for r in records] == ["NCT00000001", "NCT00000002"]
    assert report.skipped == [
        SkippedItem(
            str(sources["json-zip"]),
            "NCT00000003.json",
            "invalid JSON: Expecting property name enclosed in double quotes: "
            "line 1 column 2 (char 1)",
        )
    ]


def test_summary_lists_sources_totals_and_skips(sources: dict[str, Path]) -> None:
    _, report = read_records([sources["json-zip"], sources["json-dir"]])
    lines = report.summary().splitlines()
    assert lines[0] == f"2 read, 1 skipped: {sources['json-zip']} (json-zip)"
    assert lines[1] == f"1 read, 0 skipped, 1 ignored: {sources['json-dir']} (json-dir)"
    assert lines[2] == (
        "2 studies kept; 1 replaced by a later record with the same id; 1 skipped; "
        "1 ignored (not studies); 0 with a text cut to 100,000 characters"
    )
    assert lines[3].startswith(f"  ignored expected_related.json in {sources['json-dir']}: not a")
    assert lines[4].startswith(f"  skipped NCT00000003.json in {sources['json-zip']}: invalid JSON")
    assert len(lines) == 5


def test_summary_shortens_a_long_skip_list() -> None:
    report = IngestReport(skipped=[SkippedItem("s", f"line {i}", "bad") for i in range(8)])
    assert report.summary(max_skipped=2).splitlines()[-1] == "  ... and 6 more skipped items"


def test_a_zip_directory_is_read_once_per_read(
    sources: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The registry zip's directory (114k members) took a second to read, and a build
    # read it for the format check, the progress total and the reading itself.
    reads = []
    real = zipfile.ZipFile._RealGetContents

    def counted(archive):
        reads.append(archive.filename)
        return real(archive)

    monkeypatch.setattr(zipfile.ZipFile, "_RealGetContents", counted)
    records, report = read_records([sources["json-zip"], sources["xml-zip"]], progress=True)
    assert reads == [str(sources["json-zip"]), str(sources["xml-zip"])]
    assert [r.nct_id for r in records] == ["NCT00000001", "NCT00000002"]
    assert len(report.skipped) == 2
