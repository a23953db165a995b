"""The legacy XML reader: field mapping, API v2 translation, errors, containers."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from recommender.core import ArmGroup, Intervention, TrialRecord
from recommender.ingest import NotAStudyError, RecordError, SourceError
from recommender.ingest.ctgov_xml import (
    iter_xml_dir,
    iter_xml_file,
    iter_xml_zip,
    parse_study_xml,
    to_code,
    to_iso_date,
    to_phases,
    type_label,
)

FULL_XML = """<?xml version="1.0" encoding="UTF-8"?>
<clinical_study>
  <!-- This xml conforms to an XML Schema at: public.xsd -->
  <required_header><url>https://clinicaltrials.gov/show/NCT01234567</url></required_header>
  <id_info>
    <org_study_id>ORG-1</org_study_id>
    <nct_id>NCT01234567</nct_id>
  </id_info>
  <brief_title>Stem   Cells
    for ACLF</brief_title>
  <acronym>SCALF</acronym>
  <official_title>A Randomised Trial of Stem Cells</official_title>
  <sponsors>
    <lead_sponsor><agency>Pere  Gines</agency><agency_class>Other</agency_class></lead_sponsor>
    <collaborator><agency>Someone Else</agency></collaborator>
  </sponsors>
  <brief_summary>
    <textblock>
      Short&#xD;
      summary &amp; more.&#xD;
    </textblock>
  </brief_summary>
  <detailed_description><textblock>Long description.</textblock></detailed_description>
  <overall_status>Active, not recruiting</overall_status>
  <start_date type="Actual">February 2016</start_date>
  <phase>Phase 1/Phase 2</phase>
  <study_type>Interventional</study_type>
  <condition>Liver Failure</condition>
  <condition>Cirrhosis</condition>
  <arm_group>
    <arm_group_label>MSC arm</arm_group_label>
    <arm_group_type>Experimental</arm_group_type>
    <description>Cells
      on day 1</description>
  </arm_group>
  <arm_group>
    <arm_group_label>Control</arm_group_label>
    <arm_group_type>No Intervention</arm_group_type>
  </arm_group>
  <arm_group>
    <arm_group_label>Sham</arm_group_label>
    <arm_group_type>Sham Comparator</arm_group_type>
  </arm_group>
  <intervention>
    <intervention_type>Biological</intervention_type>
    <intervention_name>MSC</intervention_name>
    <description>Mesenchymal  stem cells</description>
    <arm_group_label>MSC arm</arm_group_label>
    <other_name>MSCs</other_name>
    <other_name> mesenchymal cells </other_name>
  </intervention>
  <intervention>
    <intervention_type>Dietary Supplement</intervention_type>
    <intervention_name>Vit D</intervention_name>
    <arm_group_label>MSC arm</arm_group_label>
    <arm_group_label>Sham</arm_group_label>
  </intervention>
  <eligibility>
    <criteria>
      <textblock>
        Inclusion Criteria:&#xD;
&#xD;
          -  Adults&#xD;
      </textblock>
    </criteria>
    <gender>All</gender>
  </eligibility>
  <overall_official>
    <last_name>Pere Gines, MD, PhD</last_name>
    <role>Principal Investigator</role>
    <affiliation>Hospital Clinic</affiliation>
  </overall_official>
  <location>
    <facility><name>Hospital Clinic</name><address><city>Barcelona</city></address></facility>
    <contact><last_name>A Nurse</last_name></contact>
  </location>
  <location>
    <facility><name>Hospital  Clinic</name></facility>
    <contact><last_name>Another Nurse</last_name></contact>
  </location>
  <location>
    <facility><name>Hospital del Mar</name></facility>
  </location>
  <last_update_posted type="Estimate">July 8, 2020</last_update_posted>
  <keyword>MSC</keyword>
  <keyword>ACLF</keyword>
  <condition_browse>
    <!-- CAUTION: imperfect algorithm -->
    <mesh_term>Liver Failure</mesh_term>
  </condition_browse>
  <intervention_browse>
    <mesh_term>Vitamin D</mesh_term>
  </intervention_browse>
</clinical_study>
"""

FULL_RECORD = TrialRecord(
    nct_id="NCT01234567",
    brief_title="Stem Cells for ACLF",
    official_title="A Randomised Trial of Stem Cells",
    acronym="SCALF",
    brief_summary="Short summary & more.",
    detailed_description="Long description.",
    conditions=("Liver Failure", "Cirrhosis"),
    keywords=("MSC", "ACLF"),
    interventions=(
        Intervention(
            name="MSC",
            type="BIOLOGICAL",
            other_names=("MSCs", "mesenchymal cells"),
            description="Mesenchymal stem cells",
        ),
        Intervention(name="Vit D", type="DIETARY_SUPPLEMENT"),
    ),
    arm_groups=(
        ArmGroup(
            label="MSC arm",
            type="EXPERIMENTAL",
            description="Cells on day 1",
            intervention_names=("Biological: MSC", "Dietary Supplement: Vit D"),
        ),
        ArmGroup(label="Control", type="NO_INTERVENTION"),
        ArmGroup(
            label="Sham", type="SHAM_COMPARATOR", intervention_names=("Dietary Supplement: Vit D",)
        ),
    ),
    condition_mesh_terms=("Liver Failure",),
    intervention_mesh_terms=("Vitamin D",),
    phases=("PHASE1", "PHASE2"),
    overall_status="ACTIVE_NOT_RECRUITING",
    study_type="INTERVENTIONAL",
    start_date="2016-02",
    lead_sponsor="Pere Gines",
    eligibility_criteria="Inclusion Criteria: - Adults",
    last_update_date="2020-07-08",
    collaborators=("Someone Else",),
    officials=("Pere Gines, MD, PhD",),  # as given: the model reads the name alone
    sites=("Hospital Clinic", "Hospital del Mar"),  # a site once, however many contacts
)


def minimal_xml(nct_id: str, title: str = "A title") -> bytes:
    """A record with an id and a title only."""
    return (
        f"<clinical_study><id_info><nct_id>{nct_id}</nct_id></id_info>"
        f"<brief_title>{title}</brief_title></clinical_study>"
    ).encode()


def records_and_errors(outcomes) -> tuple[dict[str, str], dict[str, str]]:
    """Split outcomes into {item: nct_id} and {item: error message}."""
    records, errors = {}, {}
    for item, result in outcomes:
        if isinstance(result, RecordError):
            errors[item] = str(result)
        else:
            records[item] = result.nct_id
    return records, errors


# --- one record --------------------------------------------------------------------------


def test_full_record_maps_every_field() -> None:
    assert parse_study_xml(FULL_XML.encode()) == FULL_RECORD


def test_minimal_record_reads_as_empty_fields() -> None:
    assert parse_study_xml(minimal_xml("NCT00000102")) == TrialRecord(
        nct_id="NCT00000102", brief_title="A title"
    )


def test_latin1_declared_encoding_is_honoured() -> None:
    data = (
        '<?xml version="1.0" encoding="ISO-8859-1"?><clinical_study><id_info>'
        "<nct_id>NCT00000102</nct_id></id_info><brief_title>Caf\xe9</brief_title>"
        "</clinical_study>"
    ).encode("latin-1")
    assert parse_study_xml(data).brief_title == "Café"


@pytest.mark.parametrize(
    ("data", "start"),
    [
        (FULL_XML.encode()[:500], "invalid XML: no element found: line 14"),  # truncated
        (b"", "invalid XML: no element found"),
        (b"<clinical_study><id_info></clinical_study>", "invalid XML: mismatched tag"),
        (b"<records><nct_id>NCT00000102</nct_id></records>", "not a study: root element <records>"),
        (b"<clinical_study><brief_title>x</brief_title></clinical_study>", "no id_info/nct_id"),
        (minimal_xml("NCT1234"), "invalid nct_id: 'NCT1234' is not an NCT id"),
        (minimal_xml(""), "invalid nct_id: '' is not an NCT id"),
    ],
)
def test_broken_record_is_a_record_error(data: bytes, start: str) -> None:
    with pytest.raises(RecordError) as caught:
        parse_study_xml(data)
    assert str(caught.value).startswith(start)


def test_dtd_is_refused_before_entities_expand() -> None:
    data = (
        b'<?xml version="1.0"?><!DOCTYPE clinical_study [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        b"<clinical_study><id_info><nct_id>NCT00000102</nct_id></id_info>"
        b"<brief_title>&b;</brief_title></clinical_study>"
    )
    with pytest.raises(RecordError, match="XML with a DTD or entity declarations is not accepted"):
        parse_study_xml(data)


def test_arm_names_follow_intervention_order_and_need_a_listed_label() -> None:
    data = FULL_XML.replace(
        "<arm_group_label>Sham</arm_group_label>\n  </intervention>", "</intervention>"
    )
    arms = {arm.label: arm.intervention_names for arm in parse_study_xml(data.encode()).arm_groups}
    assert arms == {
        "MSC arm": ("Biological: MSC", "Dietary Supplement: Vit D"),
        "Control": (),
        "Sham": (),
    }


# --- translation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("Unknown status", "UNKNOWN"),
        ("Active, not recruiting", "ACTIVE_NOT_RECRUITING"),
        ("Enrolling by invitation", "ENROLLING_BY_INVITATION"),
        ("Approved for marketing", "APPROVED_FOR_MARKETING"),
        ("No longer available", "NO_LONGER_AVAILABLE"),
        ("Not yet recruiting", "NOT_YET_RECRUITING"),
        ("Completed", "COMPLETED"),
        ("Interventional", "INTERVENTIONAL"),
        ("Expanded Access", "EXPANDED_ACCESS"),
        ("Observational [Patient Registry]", "OBSERVATIONAL"),
        ("Dietary Supplement", "DIETARY_SUPPLEMENT"),
        ("Combination Product", "COMBINATION_PRODUCT"),
        ("Diagnostic Test", "DIAGNOSTIC_TEST"),
        ("Genetic", "GENETIC"),
        ("Placebo Comparator", "PLACEBO_COMPARATOR"),
        ("Sham Comparator", "SHAM_COMPARATOR"),
        ("No Intervention", "NO_INTERVENTION"),
        ("Active Comparator", "ACTIVE_COMPARATOR"),
        ("Phase 3", "PHASE3"),
        ("  ", None),
        (None, None),
    ],
)
def test_enumerations_translate_to_api_v2(value: str | None, code: str | None) -> None:
    assert to_code(value) == code


@pytest.mark.parametrize(
    ("value", "phases"),
    [
        ("Phase 1/Phase 2", ("PHASE1", "PHASE2")),
        ("Phase 2/Phase 3", ("PHASE2", "PHASE3")),
        ("Phase 4", ("PHASE4",)),
        ("N/A", ("NA",)),
        ("Early Phase 1", ("EARLY_PHASE1",)),
        ("", ()),
    ],
)
def test_phases_translate_to_api_v2(value: str, phases: tuple[str, ...]) -> None:
    assert to_phases(value) == phases


@pytest.mark.parametrize(
    ("value", "iso"),
    [
        ("March 2000", "2000-03"),
        ("January 18, 2000", "2000-01-18"),
        ("July 8, 2020", "2020-07-08"),
        ("  December   2019 ", "2019-12"),
        ("Sept 2019", None),
        ("2019-12", None),
        ("", None),
        (None, None),
    ],
)
def test_dates_translate_to_iso(value: str | None, iso: str | None) -> None:
    assert to_iso_date(value) == iso


@pytest.mark.parametrize(
    ("code", "label"),
    [
        ("DRUG", "Drug"),
        ("DIETARY_SUPPLEMENT", "Dietary Supplement"),
        ("DIAGNOSTIC_TEST", "Diagnostic Test"),
    ],
)
def test_type_label_is_the_api_v2_display_form(code: str, label: str) -> None:
    assert type_label(code) == label


# --- containers ----------------------------------------------------------------------------


def test_zip_in_allpublicxml_layout(tmp_path: Path) -> None:
    path = tmp_path / "AllPublicXML.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.mkdir("NCT0000xxxx")
        archive.writestr("NCT0000xxxx/NCT00000102.xml", minimal_xml("NCT00000102"))
        archive.writestr("NCT0000xxxx/NCT00000104.xml", b"<clinical_study><id_info>")
        archive.writestr("Contents.txt", "an index, not looked at")
        archive.writestr("NCT0123xxxx/NCT01234567.xml", FULL_XML)
    records, errors = records_and_errors(iter_xml_zip(path))
    assert records == {
        "NCT0000xxxx/NCT00000102.xml": "NCT00000102",
        "NCT0123xxxx/NCT01234567.xml": "NCT01234567",
    }
    assert list(errors) == ["NCT0000xxxx/NCT00000104.xml"]
    assert errors["NCT0000xxxx/NCT00000104.xml"].startswith("invalid XML: no element found")


def test_zip_with_a_corrupt_member_reports_it(tmp_path: Path) -> None:
    path = tmp_path / "AllPublicXML.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("NCT00000102.xml", minimal_xml("NCT00000102", title="Corrupt me"))
    path.write_bytes(path.read_bytes().replace(b"Corrupt me", b"Corrupt ME"))
    records, errors = records_and_errors(iter_xml_zip(path))
    assert records == {}
    assert errors["NCT00000102.xml"].startswith("unreadable zip member: Bad CRC-32")


def test_corrupt_zip_is_a_source_error(tmp_path: Path) -> None:
    path = tmp_path / "AllPublicXML.zip"
    path.write_bytes(b"not a zip at all")
    with pytest.raises(SourceError, match="not a readable zip archive"):
        list(iter_xml_zip(path))


def test_folder_is_read_recursively_in_path_order(tmp_path: Path) -> None:
    (tmp_path / "NCT0000xxxx").mkdir()
    (tmp_path / "NCT0000xxxx" / "NCT00000104.xml").write_bytes(minimal_xml("NCT00000104"))
    (tmp_path / "NCT0000xxxx" / "NCT00000102.xml").write_bytes(minimal_xml("NCT00000102"))
    (tmp_path / "notes.xml").write_bytes(b"<notes/>")
    (tmp_path / "README.md").write_text("not looked at")
    outcomes = list(iter_xml_dir(tmp_path))
    assert [item for item, _ in outcomes] == [
        "NCT0000xxxx/NCT00000102.xml",
        "NCT0000xxxx/NCT00000104.xml",
        "notes.xml",
    ]
    assert str(outcomes[2][1]) == "not a study: root element <notes>, expected <clinical_study>"
    assert type(outcomes[2][1]) is NotAStudyError  # noted as ignored, not a failure


def test_a_file_named_as_a_study_with_another_root_is_a_failure(tmp_path: Path) -> None:
    (tmp_path / "NCT00000102.xml").write_bytes(b"<notes/>")
    [(_, result)] = list(iter_xml_dir(tmp_path))
    assert type(result) is RecordError
    assert str(result).startswith("not a study: root element <notes>")


def test_single_file(tmp_path: Path) -> None:
    path = tmp_path / "NCT01234567.xml"
    path.write_text(FULL_XML)
    assert list(iter_xml_file(path)) == [("NCT01234567.xml", FULL_RECORD)]
    with pytest.raises(SourceError):
        list(iter_xml_file(tmp_path / "absent.xml"))
