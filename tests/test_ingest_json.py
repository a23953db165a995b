"""The API v2 JSON reader: field mapping, errors, and its containers."""

from __future__ import annotations

import copy
import json
import re
import zipfile
from pathlib import Path

import pytest

from recommender.core import ArmGroup, Intervention, TrialRecord
from recommender.ingest import NotAStudyError, RecordError, SourceError
from recommender.ingest.api_v2 import decode_study
from recommender.ingest.ctgov_json import (
    iter_json_dir,
    iter_json_file,
    iter_json_zip,
    iter_jsonl,
    parse_document,
)
from recommender.ingest.ctgov_json_study import parse_study

FULL_STUDY = {
    "protocolSection": {
        "identificationModule": {
            "nctId": "NCT01234567",
            "briefTitle": "  Stem   Cells\nfor ACLF ",
            "officialTitle": "A Randomised\tTrial of Stem Cells",
            "acronym": " SCALF ",
        },
        "statusModule": {
            "overallStatus": "ACTIVE_NOT_RECRUITING",
            "startDateStruct": {"date": "2016-02", "type": "ACTUAL"},
            "lastUpdatePostDateStruct": {"date": "2020-07-28", "type": "ESTIMATED"},
        },
        "sponsorCollaboratorsModule": {
            "leadSponsor": {"name": " Pere  Gines ", "class": "OTHER"},
            "collaborators": [{"name": "Someone Else", "class": "OTHER"}, {"name": " "}],
        },
        "contactsLocationsModule": {
            "overallOfficials": [
                {
                    "name": "Pere Gines, MD",
                    "affiliation": "Hospital Clinic",
                    "role": "PRINCIPAL_INVESTIGATOR",
                }
            ],
            "locations": [
                {"facility": "Hospital Clinic", "city": "Barcelona", "country": "Spain"},
                {"facility": "Hospital  Clinic", "city": "Barcelona"},
                {"facility": "Hospital del Mar"},
                {"city": "Girona"},
            ],
        },
        "descriptionModule": {
            "briefSummary": "Short\n\n  summary.",
            "detailedDescription": "Long\r\ndescription.",
        },
        "conditionsModule": {
            "conditions": ["Liver  Failure", " ", "Cirrhosis"],
            "keywords": ["MSC", ""],
        },
        "designModule": {"studyType": "INTERVENTIONAL", "phases": ["PHASE1", "PHASE2"]},
        "armsInterventionsModule": {
            "armGroups": [
                {
                    "label": "MSC arm",
                    "type": "EXPERIMENTAL",
                    "description": "Cells\n on day 1",
                    "interventionNames": ["Biological: MSC", "Dietary Supplement: Vit D"],
                },
                {"label": "Control", "type": "NO_INTERVENTION"},
            ],
            "interventions": [
                {
                    "type": "BIOLOGICAL",
                    "name": "MSC",
                    "description": "Mesenchymal  stem cells",
                    "armGroupLabels": ["MSC arm"],
                    "otherNames": ["MSCs", " mesenchymal cells "],
                },
                {"type": "DIETARY_SUPPLEMENT", "name": "Vit D"},
                {"name": "Untyped thing"},
            ],
        },
        "eligibilityModule": {"eligibilityCriteria": "Inclusion Criteria:\n\n* Adults\n"},
    },
    "derivedSection": {
        "conditionBrowseModule": {"meshes": [{"id": "D017093", "term": "Liver Failure"}]},
        "interventionBrowseModule": {"meshes": [{"term": "Vitamin D"}, {"term": " "}]},
    },
}

FULL_RECORD = TrialRecord(
    nct_id="NCT01234567",
    brief_title="Stem Cells for ACLF",
    official_title="A Randomised Trial of Stem Cells",
    acronym="SCALF",
    brief_summary="Short summary.",
    detailed_description="Long description.",
    conditions=("Liver Failure", "Cirrhosis"),
    keywords=("MSC",),
    interventions=(
        Intervention(
            name="MSC",
            type="BIOLOGICAL",
            other_names=("MSCs", "mesenchymal cells"),
            description="Mesenchymal stem cells",
        ),
        Intervention(name="Vit D", type="DIETARY_SUPPLEMENT"),
        Intervention(name="Untyped thing"),
    ),
    arm_groups=(
        ArmGroup(
            label="MSC arm",
            type="EXPERIMENTAL",
            description="Cells on day 1",
            intervention_names=("Biological: MSC", "Dietary Supplement: Vit D"),
        ),
        ArmGroup(label="Control", type="NO_INTERVENTION"),
    ),
    condition_mesh_terms=("Liver Failure",),
    intervention_mesh_terms=("Vitamin D",),
    phases=("PHASE1", "PHASE2"),
    overall_status="ACTIVE_NOT_RECRUITING",
    study_type="INTERVENTIONAL",
    start_date="2016-02",
    lead_sponsor="Pere Gines",
    eligibility_criteria="Inclusion Criteria: * Adults",
    last_update_date="2020-07-28",
    collaborators=("Someone Else",),
    officials=("Pere Gines, MD",),
    sites=("Hospital Clinic", "Hospital del Mar"),  # once each; a location without one
)


def study(nct_id: str, title: str = "A title") -> dict:
    """A minimal study, as most of the bulk download is."""
    return {"protocolSection": {"identificationModule": {"nctId": nct_id, "briefTitle": title}}}


def records_and_errors(outcomes) -> tuple[dict[str, str], dict[str, str]]:
    """Split outcomes into {item: nct_id} and {item: error message}."""
    records, errors = {}, {}
    for item, result in outcomes:
        if isinstance(result, RecordError):
            errors[item] = str(result)
        else:
            records[item] = result.nct_id
    return records, errors


# --- parse_study -------------------------------------------------------------------------


def test_full_study_maps_every_field() -> None:
    assert parse_study(FULL_STUDY) == FULL_RECORD


def test_minimal_study_reads_as_empty_fields() -> None:
    record = parse_study({"protocolSection": {"identificationModule": {"nctId": "nct00000102 "}}})
    assert record == TrialRecord(nct_id="NCT00000102")


def test_null_values_read_as_absent() -> None:
    data = study("NCT00000102")
    data["protocolSection"]["statusModule"] = None
    data["protocolSection"]["identificationModule"]["officialTitle"] = None
    assert parse_study(data) == TrialRecord(nct_id="NCT00000102", brief_title="A title")


def test_parse_study_does_not_modify_its_input() -> None:
    data = copy.deepcopy(FULL_STUDY)
    parse_study(data)
    assert data == FULL_STUDY


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([1, 2], "not a study: expected a JSON object, got list"),
        ("NCT00000102", "not a study: expected a JSON object, got string"),
        ({"NCT05940610": ["NCT1"]}, "not a study: a JSON object without 'protocolSection'"),
        ({"protocolSection": []}, "study.protocolSection: expected an object, got list"),
        ({"protocolSection": {}}, "no protocolSection.identificationModule.nctId"),
        (study("NCT123"), "invalid nctId: 'NCT123' is not an NCT id"),
        (study(12345678), "invalid nctId: an NCT id must be a string"),
    ],
)
def test_not_a_study_is_a_record_error(data: object, message: str) -> None:
    with pytest.raises(RecordError, match=re.escape(message)):
        parse_study(data)


@pytest.mark.parametrize(
    ("module", "content", "path"),
    [
        (
            "conditionsModule",
            {"conditions": "Asthma"},
            "protocolSection.conditionsModule.conditions",
        ),
        (
            "conditionsModule",
            {"keywords": ["a", 3]},
            "protocolSection.conditionsModule.keywords[1]",
        ),
        ("designModule", {"phases": "PHASE1"}, "protocolSection.designModule.phases"),
        ("statusModule", {"overallStatus": 7}, "protocolSection.statusModule.overallStatus"),
        (
            "armsInterventionsModule",
            {"interventions": ["Drug: X"]},
            "protocolSection.armsInterventionsModule.interventions[0]",
        ),
        (
            "armsInterventionsModule",
            {"armGroups": [{"label": "A", "interventionNames": "Drug: X"}]},
            "protocolSection.armsInterventionsModule.armGroups[0].interventionNames",
        ),
        ("descriptionModule", ["text"], "protocolSection.descriptionModule"),
        (
            "contactsLocationsModule",
            {"locations": [{"facility": ["Hospital Clinic"]}]},
            "protocolSection.contactsLocationsModule.locations[0].facility",
        ),
        (
            "contactsLocationsModule",
            {"overallOfficials": "Pere Gines"},
            "protocolSection.contactsLocationsModule.overallOfficials",
        ),
        (
            "sponsorCollaboratorsModule",
            {"collaborators": [3]},
            "protocolSection.sponsorCollaboratorsModule.collaborators[0]",
        ),
    ],
)
def test_wrong_type_names_the_field(module: str, content: object, path: str) -> None:
    data = study("NCT00000102")
    data["protocolSection"][module] = content
    with pytest.raises(RecordError) as caught:
        parse_study(data)
    assert str(caught.value).startswith(f"{path}: expected")


def test_wrong_type_in_derived_section_names_the_field() -> None:
    data = study("NCT00000102")
    data["derivedSection"] = {"conditionBrowseModule": {"meshes": [{"term": ["x"]}]}}
    with pytest.raises(RecordError, match=r"derivedSection\.conditionBrowseModule\.meshes\[0\]"):
        parse_study(data)


def test_record_error_is_a_value_error() -> None:
    assert issubclass(RecordError, ValueError)


# --- documents -----------------------------------------------------------------------------


def test_document_holding_an_api_page() -> None:
    page = {"studies": [study("NCT00000001"), {"oops": 1}], "nextPageToken": "abc"}
    records, errors = records_and_errors(parse_document(json.dumps(page), "page.json"))
    assert records == {"page.json:studies[0]": "NCT00000001"}
    assert list(errors) == ["page.json:studies[1]"]
    assert "without 'protocolSection'" in errors["page.json:studies[1]"]


def test_document_holding_a_list() -> None:
    document = json.dumps([study("NCT00000001"), study("NCT00000002")]).encode()
    records, errors = records_and_errors(parse_document(document, "list.json"))
    assert records == {"list.json[0]": "NCT00000001", "list.json[1]": "NCT00000002"}
    assert errors == {}


@pytest.mark.parametrize(
    ("raw", "start"),
    [
        (b'{"protocolSection": ', "invalid JSON: Expecting value"),
        (b"\xff\xfe\x00garbage", "invalid JSON:"),
        (b"[" * 100_000, "invalid JSON:"),
    ],
)
def test_invalid_json_is_one_skipped_item(raw: bytes, start: str) -> None:
    outcomes = list(parse_document(raw, "bad.json"))
    assert len(outcomes) == 1
    item, error = outcomes[0]
    assert item == "bad.json"
    assert isinstance(error, RecordError)
    assert str(error).startswith(start)
    assert "\n" not in str(error)


# --- containers ----------------------------------------------------------------------------


def test_zip_reads_json_members_and_reports_bad_ones(tmp_path: Path) -> None:
    path = tmp_path / "ctg-studies.json.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("NCT00000001.json", json.dumps(study("NCT00000001")))
        archive.mkdir("sub")
        archive.writestr("sub/NCT00000002.JSON", json.dumps(study("NCT00000002")))
        archive.writestr("README.txt", "not a study, not looked at")
        archive.writestr("NCT00000003.json", '{"protocolSection": {')
        archive.writestr("NCT00000004.json", json.dumps(study("NCT0000004")))
    records, errors = records_and_errors(iter_json_zip(path))
    assert records == {"NCT00000001.json": "NCT00000001", "sub/NCT00000002.JSON": "NCT00000002"}
    assert set(errors) == {"NCT00000003.json", "NCT00000004.json"}
    assert errors["NCT00000003.json"].startswith("invalid JSON:")
    assert errors["NCT00000004.json"].startswith("invalid nctId:")


def test_zip_with_a_corrupt_member_reports_it_and_reads_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "studies.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("a.json", json.dumps(study("NCT00000001")))
        archive.writestr("b.json", json.dumps(study("NCT00000002", title="Corrupt me")))
    raw = path.read_bytes()
    path.write_bytes(raw.replace(b"Corrupt me", b"Corrupt ME"))  # same size, wrong CRC
    records, errors = records_and_errors(iter_json_zip(path))
    assert records == {"a.json": "NCT00000001"}
    assert list(errors) == ["b.json"]
    assert errors["b.json"].startswith("unreadable zip member: Bad CRC-32")


def test_corrupt_zip_is_a_source_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.zip"
    path.write_bytes(b"PK\x03\x04 this is not really a zip")
    with pytest.raises(SourceError, match="not a readable zip archive"):
        list(iter_json_zip(path))


def test_folder_reads_studies_pages_lists_recursively_and_reports_non_studies(
    tmp_path: Path,
) -> None:
    (tmp_path / "nested").mkdir()
    (tmp_path / "NCT00000001.json").write_text(json.dumps(study("NCT00000001")))
    (tmp_path / "nested" / "page.json").write_text(
        json.dumps({"studies": [study("NCT00000002")], "nextPageToken": None})
    )
    (tmp_path / "list.json").write_text(json.dumps([study("NCT00000003")]))
    (tmp_path / "expected_related.json").write_text(json.dumps({"NCT05940610": ["NCT1"]}))
    (tmp_path / "NCT05940610.page.txt").write_text("a registry page, not looked at")
    records, errors = records_and_errors(iter_json_dir(tmp_path))
    assert records == {
        "NCT00000001.json": "NCT00000001",
        "list.json[0]": "NCT00000003",
        "nested/page.json:studies[0]": "NCT00000002",
    }
    assert errors == {
        "expected_related.json": "not a study: a JSON object without 'protocolSection' "
        "(keys: 'NCT05940610')"
    }
    ignored = [item for item, result in iter_json_dir(tmp_path) if type(result) is NotAStudyError]
    assert ignored == ["expected_related.json"]


@pytest.mark.parametrize(
    "name, content",
    [
        ("NCT00000009.json", {"note": "a study file that lost its sections"}),  # named as a study
        ("page.json", {"studies": "not a list"}),  # a page, broken
        ("study.json", {"derivedSection": {}}),  # a study without its protocol
        ("list.json", ["not a study"]),  # an entry of a list
    ],
)
def test_broken_studies_are_skipped_not_ignored(tmp_path: Path, name: str, content) -> None:
    (tmp_path / name).write_text(json.dumps(content))
    [(item, result)] = list(iter_json_dir(tmp_path))
    assert isinstance(result, RecordError) and not isinstance(result, NotAStudyError), item


def test_a_label_file_given_alone_is_skipped_not_ignored(tmp_path: Path) -> None:
    # Named as a source by the user, it was meant to hold studies.
    path = tmp_path / "expected_related.json"
    path.write_text(json.dumps({"NCT05940610": ["NCT05881668"]}))
    [(_, result)] = list(iter_json_file(path))
    assert type(result) is RecordError


def test_folder_is_read_in_sorted_path_order(tmp_path: Path) -> None:
    for name in ("b.json", "a.json", "c.json"):
        (tmp_path / name).write_text(json.dumps(study("NCT00000001", title=name)))
    assert [item for item, _ in iter_json_dir(tmp_path)] == ["a.json", "b.json", "c.json"]


def test_jsonl_names_items_by_line(tmp_path: Path) -> None:
    path = tmp_path / "studies.jsonl"
    lines = [
        json.dumps(study("NCT00000001")),
        "",
        "{not json",
        json.dumps({"studies": [study("NCT00000002")]}),
        json.dumps(study("NCT00000003")),
    ]
    path.write_text("\n".join(lines) + "\n")
    records, errors = records_and_errors(iter_jsonl(path))
    assert records == {
        "line 1": "NCT00000001",
        "line 4:studies[0]": "NCT00000002",
        "line 5": "NCT00000003",
    }
    assert list(errors) == ["line 3"]
    assert errors["line 3"].startswith("invalid JSON:")


def test_single_file_holding_a_study(tmp_path: Path) -> None:
    path = tmp_path / "NCT01234567.json"
    path.write_text(json.dumps(FULL_STUDY), encoding="utf-16")  # any JSON encoding
    [(item, record)] = list(iter_json_file(path))
    assert item == "NCT01234567.json"
    assert record == FULL_RECORD


@pytest.mark.parametrize("reader", [iter_json_file, iter_jsonl, iter_json_zip])
def test_missing_file_is_a_source_error(tmp_path: Path, reader) -> None:
    with pytest.raises(SourceError, match="no such file"):
        list(reader(tmp_path / "absent.json"))


# --- the typed fast path -------------------------------------------------------------------


def _variants() -> list[dict]:
    """FULL_STUDY, a minimal study, and studies with nulls and empty modules."""
    nulls = copy.deepcopy(FULL_STUDY)
    nulls["protocolSection"]["identificationModule"]["acronym"] = None
    nulls["protocolSection"]["statusModule"]["startDateStruct"] = None
    nulls["protocolSection"]["conditionsModule"]["keywords"] = None
    nulls["derivedSection"]["conditionBrowseModule"] = None
    nulls["protocolSection"]["sponsorCollaboratorsModule"]["collaborators"] = None
    nulls["protocolSection"]["contactsLocationsModule"]["locations"][0]["facility"] = None
    empties = copy.deepcopy(FULL_STUDY)
    empties["protocolSection"]["armsInterventionsModule"] = {
        "interventions": [{"name": " "}, {}],
        "armGroups": [{"label": ""}],
    }
    empties["resultsSection"] = {"outcomeMeasuresModule": {"outcomeMeasures": [{"x": [1, 2.5]}]}}
    return [FULL_STUDY, study("nct00000102"), nulls, empties]


@pytest.mark.parametrize("data", _variants())
def test_typed_decoding_gives_the_record_the_dict_parser_gives(data: dict) -> None:
    raw = json.dumps(data).encode()
    assert decode_study(raw) is not None  # the fast path took it
    assert decode_study(raw) == parse_study(json.loads(raw))


@pytest.mark.parametrize(
    "raw",
    [
        json.dumps({"studies": [study("NCT00000102")]}).encode(),  # a page
        json.dumps([study("NCT00000102")]).encode(),  # a list
        json.dumps(study("NCT123")).encode(),  # invalid id
        json.dumps({"protocolSection": {}}).encode(),  # no id
        json.dumps({**study("NCT00000102"), "derivedSection": []}).encode(),  # wrong type
        b'{"protocolSection": {"identificationModule": {"nctId": "NCT00000102"}}, "x": NaN}',
        json.dumps(study("NCT00000102")).encode("utf-16"),
        b"{not json",
    ],
)
def test_what_typed_decoding_does_not_take_is_left_to_the_dict_parser(raw: bytes) -> None:
    assert decode_study(raw) is None


def test_a_wrong_type_still_names_the_field_in_a_zip(tmp_path: Path) -> None:
    data = study("NCT00000102")
    data["protocolSection"]["conditionsModule"] = {"conditions": "Asthma"}
    path = tmp_path / "studies.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("NCT00000102.json", json.dumps(data))
        archive.writestr("NCT00000103.json", json.dumps(study("NCT00000103")))
    records, errors = records_and_errors(iter_json_zip(path))
    assert records == {"NCT00000103.json": "NCT00000103"}
    assert errors["NCT00000102.json"].startswith(
        "protocolSection.conditionsModule.conditions: expected a list, got string"
    )
