"""A single study, however malformed, is skipped with its reason and never stops a read.

Hostile documents (nested a thousand levels deep, text that is not Unicode, a wrong
type anywhere, garbage bytes, a list of millions of non-studies) are fed through every
container (folder, zip, JSON lines, one file), read by one process and by several, and
through ``update``: the run completes, the good studies beside them are read, and each
bad one is a skipped item with a reason. The generated cases (hypothesis) check the
same for documents nobody thought of.
"""

from __future__ import annotations

import copy
import json
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recommender.core import TrialRecord, encode_record
from recommender.ingest import RecordError, read_records
from recommender.ingest import parallel as parallel_reading
from recommender.ingest.ctgov_json import MAX_SKIPS_LISTED, parse_document
from recommender.ingest.ctgov_xml import parse_study_xml
from recommender.ingest.limits import cap_texts
from tests.test_ingest_json import FULL_STUDY, study

GOOD = [study(f"NCT0000000{i}", title=f"Good trial {i}") for i in range(1, 7)]
GOOD_IDS = {s["protocolSection"]["identificationModule"]["nctId"] for s in GOOD}

_HEAD = b'{"protocolSection":{"identificationModule":{"nctId":"NCT09000001","briefTitle":"x"}},'


def deep_unknown_field(depth: int = 1000) -> bytes:
    """A study whose unknown field nests ``depth`` lists: what the issue's file held."""
    return _HEAD + b'"extra":' + b"[" * depth + b"]" * depth + b"}"


def deep_known_field(depth: int = 3000) -> bytes:
    return (
        b'{"protocolSection":{"identificationModule":{"nctId":"NCT09000002"},'
        b'"conditionsModule":{"conditions":' + b"[" * depth + b"]" * depth + b"}}}"
    )


LONE_SURROGATE = (
    b'{"protocolSection":{"identificationModule":'
    b'{"nctId":"NCT09000003","briefTitle":"half \\ud800 a pair"}}}'
)

HOSTILE: dict[str, bytes] = {
    "deep-unknown.json": deep_unknown_field(1000),
    "deeper-unknown.json": deep_unknown_field(20_000),
    "deep-known.json": deep_known_field(),
    "deep-top.json": b"[" * 5000 + b"]" * 5000,
    "surrogate.json": LONE_SURROGATE,
    "garbage.json": b"\x00\xff\xfe{]\x80",
    "nan.json": b'{"protocolSection":{"identificationModule":{"nctId":"NCT09000004",'
    b'"briefTitle":NaN}}}',
    "bigint.json": _HEAD + b'"n":' + b"9" * 5000 + b"}",
    "wrong-id.json": b'{"protocolSection":{"identificationModule":{"nctId":[1,{}]}}}',
    "wrong-module.json": b'{"protocolSection":{"armsInterventionsModule":{"interventions":7}}}',
}


def _files(tmp_path: Path) -> dict[str, bytes]:
    files = {f"{s['protocolSection']['identificationModule']['nctId']}.json": s for s in GOOD}
    return {name: json.dumps(doc).encode() for name, doc in files.items()} | HOSTILE


def as_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "folder"
    folder.mkdir()
    for name, raw in _files(tmp_path).items():
        (folder / name).write_bytes(raw)
    return folder


def as_zip(tmp_path: Path) -> Path:
    path = tmp_path / "studies.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, raw in _files(tmp_path).items():
            archive.writestr(name, raw)
    return path


def as_jsonl(tmp_path: Path) -> Path:
    path = tmp_path / "studies.jsonl"
    path.write_bytes(b"\n".join(raw for raw in _files(tmp_path).values()) + b"\n")
    return path


def as_list_file(tmp_path: Path) -> Path:
    """One file holding a list: the hostile entries that still parse as JSON, and the good."""
    path = tmp_path / "list.json"
    entries = [raw for raw in _files(tmp_path).values() if _parses(raw)]
    path.write_bytes(b"[" + b",".join(entries) + b"]")
    return path


def _parses(raw: bytes) -> bool:
    try:
        json.loads(raw)
    except (ValueError, RecursionError):
        return False
    return True


CONTAINERS = [as_folder, as_zip, as_jsonl, as_list_file]


@pytest.mark.parametrize("n_jobs", [1, 2])
@pytest.mark.parametrize("container", CONTAINERS, ids=lambda f: f.__name__)
def test_hostile_studies_are_skipped_and_the_rest_is_read(tmp_path, monkeypatch, container, n_jobs):
    monkeypatch.setattr(parallel_reading, "RUN_ITEMS", 3)  # several runs: several processes
    monkeypatch.setattr(parallel_reading, "RUN_BYTES", 200)
    source = container(tmp_path)
    records, report = read_records([source], n_jobs=n_jobs)
    read = {r.nct_id for r in records}
    assert read >= GOOD_IDS
    assert read - GOOD_IDS <= {"NCT09000001"}  # the deep unknown field, if not too deep
    assert all(isinstance(r, TrialRecord) and encode_record(r) for r in records)
    reasons = {item.item: item.reason for item in report.skipped}
    assert all(reasons.values()), reasons
    surrogate = [reason for item, reason in reasons.items() if "surrogate" in reason]
    assert len(surrogate) == 1 and "brief_title" in surrogate[0]
    if container is not as_list_file:
        assert "nested too deeply" in reasons[_named(container, "deeper-unknown.json")]


def _named(container, name: str) -> str:
    """How a read names the item that was file ``name`` of :data:`HOSTILE`."""
    if container is as_jsonl:
        return f"line {list(HOSTILE).index(name) + len(GOOD) + 1}"
    return name


def test_a_thousand_levels_inside_an_unknown_field_do_not_raise():
    # The case: msgspec raised RecursionError, which stopped the whole build.
    outcomes = list(parse_document(deep_unknown_field(1000), "deep.json", whole_file=True))
    assert len(outcomes) == 1
    item, result = outcomes[0]
    assert item == "deep.json"
    if isinstance(result, RecordError):
        assert "nested too deeply" in str(result)
    else:
        assert result.nct_id == "NCT09000001"


def test_text_that_is_not_unicode_is_skipped_with_the_field_named():
    [(_, result)] = parse_document(LONE_SURROGATE, "s.json")
    assert isinstance(result, RecordError)
    assert "brief_title" in str(result) and "surrogate" in str(result)


def test_a_list_of_millions_of_non_studies_lists_a_few_and_counts_the_rest():
    # One 16 MiB file of "0," would otherwise be eight million skipped items in memory.
    raw = b"[" + b",".join([b"0"] * 50_000) + b"," + json.dumps(GOOD[0]).encode() + b"]"
    outcomes = list(parse_document(raw, "many.json"))
    errors = [(item, r) for item, r in outcomes if isinstance(r, RecordError)]
    records = [r for _, r in outcomes if not isinstance(r, RecordError)]
    assert [r.nct_id for r in records] == ["NCT00000001"]
    assert len(errors) == MAX_SKIPS_LISTED + 1
    item, last = errors[-1]
    assert item == "many.json" and f"{50_000 - MAX_SKIPS_LISTED:,} more" in str(last)


def test_the_shortest_text_limit_never_cuts_the_id():
    [(_, record)] = parse_document(json.dumps(FULL_STUDY).encode(), "full.json")
    capped, cut = cap_texts(record, 1)
    assert capped.nct_id == record.nct_id and "nct_id" not in " ".join(cut)


def test_a_hostile_xml_record_is_skipped():
    deep = b"<clinical_study>" + b"<a>" * 50_000 + b"</a>" * 50_000 + b"</clinical_study>"
    with pytest.raises(RecordError, match="nct_id"):
        parse_study_xml(deep)


@pytest.mark.parametrize("container", [as_zip, as_jsonl], ids=lambda f: f.__name__)
def test_a_build_over_hostile_files_completes(tmp_path, monkeypatch, container):
    from dataclasses import replace

    from recommender.pipelines import build_index
    from recommender.text import DEFAULT_FIELD_GROUPS

    monkeypatch.setattr(parallel_reading, "RUN_ITEMS", 3)  # the workers write the spool
    monkeypatch.setattr(parallel_reading, "RUN_BYTES", 200)
    groups = [replace(g, min_df=1, max_df=1.0) for g in DEFAULT_FIELD_GROUPS]
    summary = build_index([container(tmp_path)], tmp_path / "index", groups=groups, k=3, n_jobs=2)
    assert summary.studies >= len(GOOD)
    assert len(summary.report.skipped) >= len(HOSTILE) - 1


def test_an_update_with_a_hostile_study_completes(tmp_path):
    from recommender.index import TrialIndex
    from recommender.pipelines.update import update_index
    from tests.factories import build_tiny_index

    index = build_tiny_index(tmp_path / "built")
    new = tmp_path / "new"
    new.mkdir()
    (new / "NCT09000001.json").write_bytes(deep_unknown_field(20_000))
    (new / "surrogate.json").write_bytes(LONE_SURROGATE)
    added = copy.deepcopy(GOOD[0])
    added["protocolSection"]["identificationModule"]["nctId"] = "NCT00000010"
    (new / "NCT00000010.json").write_text(json.dumps(added))
    summary = update_index(index, [new], n_jobs=1)
    assert [r.nct_id for r in summary.changes.added] == ["NCT00000010"]
    assert len(summary.report.skipped) == 2
    assert "NCT00000010" in TrialIndex.load(index)


# -- generated hostile documents ----------------------------------------------------------

_SURROGATES = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
_TEXT = st.text(st.one_of(st.characters(), _SURROGATES), max_size=12)
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    _TEXT,
)
JSON_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_TEXT, inner, max_size=4)),
    max_leaves=12,
)


def _paths(document: object, path: tuple = ()) -> list[tuple]:
    """Every place in a document a value may be put: each key and list entry."""
    found = [path]
    if isinstance(document, dict):
        for key, value in document.items():
            found += _paths(value, (*path, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            found += _paths(value, (*path, index))
    return found


def _put(document: object, path: tuple, value: object) -> object:
    if not path:
        return value
    *parents, last = path
    target = document
    for step in parents:
        target = target[step]
    target[last] = value
    return document


@st.composite
def hostile_documents(draw) -> bytes:
    """A real study with a generated value put somewhere in it (or a new key beside it),
    perhaps nested very deep, perhaps as bytes that are not JSON at all."""
    kind = draw(st.sampled_from(["replace", "add", "deep", "bytes", "truncate"]))
    document = copy.deepcopy(FULL_STUDY)
    if kind == "bytes":
        return draw(st.binary(max_size=64))
    if kind == "deep":
        depth = draw(st.sampled_from([10, 200, 3000, 20_000]))
        opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"a":', b"}")]))
        nested = opener * depth + b"1" + closer * depth
        raw = json.dumps(document).encode()
        return (
            raw[:-1]
            + b',"'
            + draw(st.sampled_from([b"x", b"derivedSection"]))
            + b'":'
            + (nested + b"}")
        )
    value = draw(JSON_VALUES)
    if kind == "add":
        parents = [p for p in _paths(document) if isinstance(_at(document, p), dict)]
        _put(document, (*draw(st.sampled_from(parents)), draw(_TEXT)), value)
    else:
        document = _put(document, draw(st.sampled_from(_paths(document))), value)
    raw = json.dumps(document).encode()  # ensure_ascii: a lone surrogate is an escape
    if kind == "truncate":
        raw = raw[: draw(st.integers(0, len(raw)))]
    return raw


def _at(document: object, path: tuple) -> object:
    for step in path:
        document = document[step]
    return document


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=hostile_documents(), whole_file=st.booleans())
def test_a_generated_hostile_document_gives_records_or_reasons_never_an_error(raw, whole_file):
    for item, result in parse_document(raw, "doc.json", whole_file=whole_file):
        assert item.startswith("doc.json")
        if isinstance(result, RecordError):
            assert str(result)
        else:
            encode_record(result)  # storable: what the spool and the index write
            cap_texts(result, 10)
            assert result.nct_id.startswith("NCT")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(docs=st.lists(hostile_documents(), min_size=1, max_size=4))
def test_generated_hostile_files_among_good_ones_never_stop_a_read(tmp_path_factory, docs):
    folder = tmp_path_factory.mktemp("fuzz")
    for i, raw in enumerate(docs):
        (folder / f"hostile-{i}.json").write_bytes(raw)
    for s in GOOD:
        nct_id = s["protocolSection"]["identificationModule"]["nctId"]
        (folder / f"{nct_id}.json").write_text(json.dumps(s))
    jsonl = folder.parent / f"{folder.name}.jsonl"
    jsonl.write_bytes(b"\n".join([*docs, *(json.dumps(s).encode() for s in GOOD)]))
    for source in (folder, jsonl):
        records, report = read_records([source])
        assert {r.nct_id for r in records} >= GOOD_IDS
        assert all(item.reason for item in report.skipped + report.ignored)


_XML_INSERTS = st.sampled_from(
    [b"<a>" * 20_000, b"&#xD800;", b"&#0;", b"&bogus;", b"<!DOCTYPE x [<!ENTITY e 'x'>]>",
     b"\xff\xfe", b"<![CDATA[", b"</clinical_study>", b"<nct_id>NCT1</nct_id>"]
)  # fmt: skip


@st.composite
def hostile_xml(draw) -> bytes:
    """A real legacy XML record with bytes cut out, or something hostile put in."""
    from tests.test_ingest_xml import FULL_XML

    raw = FULL_XML.encode()
    start = draw(st.integers(0, len(raw)))
    stop = draw(st.integers(start, min(len(raw), start + 200)))
    middle = draw(st.one_of(_XML_INSERTS, st.binary(max_size=32), st.just(b"")))
    return raw[:start] + middle + raw[stop:]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(docs=st.lists(st.one_of(hostile_documents(), hostile_xml()), min_size=1, max_size=4))
def test_generated_hostile_members_of_a_zip_never_stop_a_read(tmp_path_factory, docs):
    from tests.test_ingest_xml import FULL_XML

    path = tmp_path_factory.mktemp("fuzz-zip") / "studies.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for i, raw in enumerate(docs):
            archive.writestr(
                f"hostile-{i}.{'xml' if raw.lstrip().startswith(b'<') else 'json'}", raw
            )
        for s in GOOD:
            nct_id = s["protocolSection"]["identificationModule"]["nctId"]
            archive.writestr(f"{nct_id}.json", json.dumps(s))
        archive.writestr("NCT01234567.xml", FULL_XML)
    records, report = read_records([path])
    assert {r.nct_id for r in records} >= GOOD_IDS | {"NCT01234567"}
    assert all(item.reason for item in report.skipped + report.ignored)
    assert all(encode_record(r) for r in records)
