"""The readers against the real registry corpus (``$RECOMMENDER_DATA``, see conftest).

The XML subset's studies are also in the JSON zip, converted from the same XML, so
the two readers must agree on them. They cannot agree on everything, because the
conversion that produced the JSON corpus lost information. Measured over the whole
corpus (all 114,697 JSON studies, all 6,786 XML records):

* it never kept ``acronym``, ``armGroups``, ``lastUpdatePostDateStruct``, nor the
  ``description`` and ``otherNames`` of interventions (no JSON study has any of
  them, while the XML has them for 280, 1,762, 6,786 and 1,384 of these studies),
  nor the sponsor's collaborators, the overall officials and the locations (the XML
  has them for 2,804, 5,173 and 5,608: why ``make serve`` reads the XML after it);
* it dropped the phase of every study whose XML phase is ``N/A`` (764 here): API v2
  spells it ``["NA"]`` (as the JSON corpus does for its newer, not converted,
  studies), which is what the XML reader produces.

So every field is compared wherever the JSON record carries it (interventions
sub-field by sub-field, in order), and a field the JSON lacks while the XML has it
must be one of the losses above, nothing else.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import fields
from pathlib import Path

import pytest

from recommender.core import Intervention, TrialRecord
from recommender.ingest import SkippedItem, SourceSummary, read_records
from recommender.ingest.ctgov_json_study import parse_study

pytestmark = pytest.mark.corpus

JSON_ZIP = "ctg-studies.json.zip"
XML_ZIP = "AllPublicXML-2023-subset.zip"
SEED_CLUSTER = "seed-cluster"
JSON_STUDIES = 114_697
XML_STUDIES = 6_786

# Fields the JSON conversion never carries (see the module docstring).
LOST_IN_CONVERSION = {
    "acronym",
    "arm_groups",
    "last_update_date",
    "collaborators",
    "officials",
    "sites",
}


def _carried(value: object) -> bool:
    """Whether a field value is present (non-empty)."""
    return value not in ("", (), None)


def _interventions_differ(json_items: tuple, xml_items: tuple) -> bool:
    """Compare interventions in order, on the sub-fields the JSON ones carry."""
    if len(json_items) != len(xml_items):
        return True
    return any(
        _carried(getattr(j, f.name)) and getattr(j, f.name) != getattr(x, f.name)
        for j, x in zip(json_items, xml_items, strict=True)
        for f in fields(Intervention)
    )


def _compare(json_record: TrialRecord, xml_record: TrialRecord) -> tuple[list[str], list[str]]:
    """(fields compared, fields that disagree) between the two readings of one study."""
    compared, mismatched = [], []
    for field in fields(TrialRecord):
        json_value = getattr(json_record, field.name)
        if field.name == "nct_id" or not _carried(json_value):
            continue
        compared.append(field.name)
        xml_value = getattr(xml_record, field.name)
        if field.name == "interventions":
            differ = _interventions_differ(json_value, xml_value)
        else:
            differ = json_value != xml_value
        if differ:
            mismatched.append(field.name)
    return compared, mismatched


def _unexpected_losses(json_record: TrialRecord, xml_record: TrialRecord) -> list[str]:
    """Fields the XML carries and the JSON does not, beyond the known conversion losses."""
    losses = []
    for field in fields(TrialRecord):
        if _carried(getattr(xml_record, field.name)) and not _carried(
            getattr(json_record, field.name)
        ):
            known = field.name in LOST_IN_CONVERSION or (
                field.name == "phases" and xml_record.phases == ("NA",)
            )
            if not known:
                losses.append(field.name)
    return losses


@pytest.fixture(scope="module")
def xml_records(shared_data: Path) -> dict[str, TrialRecord]:
    """Every record of the XML zip, by id."""
    records, report = read_records([shared_data / XML_ZIP])
    assert report.skipped == []
    return {record.nct_id: record for record in records}


@pytest.fixture(scope="module")
def json_then_seed(shared_data: Path):
    """The JSON zip read, then the seed cluster (the project's build reads the XML
    subset between them: ``extract_sources``)."""
    return read_records([shared_data / JSON_ZIP, shared_data / SEED_CLUSTER])


def test_xml_and_json_readers_agree(shared_data: Path, xml_records: dict) -> None:
    assert len(xml_records) == XML_STUDIES
    compared_counts: dict[str, int] = {}
    mismatches, losses = [], []
    with zipfile.ZipFile(shared_data / JSON_ZIP) as archive:
        for nct_id, xml_record in xml_records.items():
            json_record = parse_study(json.loads(archive.read(f"{nct_id}.json")))
            compared, mismatched = _compare(json_record, xml_record)
            for name in compared:
                compared_counts[name] = compared_counts.get(name, 0) + 1
            mismatches += [f"{nct_id}.{name}" for name in mismatched]
            losses += [f"{nct_id}.{name}" for name in _unexpected_losses(json_record, xml_record)]
    assert mismatches == [], f"{len(mismatches)} disagreements, first: {mismatches[:20]}"
    assert losses == [], f"{len(losses)} unexplained losses, first: {losses[:20]}"
    # Not vacuous: every field the JSON conversion keeps was compared, on many studies.
    assert set(compared_counts) == {f.name for f in fields(TrialRecord)} - LOST_IN_CONVERSION - {
        "nct_id"
    }
    assert compared_counts["brief_title"] == XML_STUDIES
    assert compared_counts["interventions"] > 5_000
    assert compared_counts["phases"] > 4_000


def test_json_zip_reads_every_study_without_skips(shared_data: Path, json_then_seed) -> None:
    records, report = json_then_seed
    assert report.sources[0] == SourceSummary(
        str(shared_data / JSON_ZIP), "json-zip", read=JSON_STUDIES, skipped=0
    )
    assert report.skipped == []
    assert len(records) == report.studies == JSON_STUDIES + 5  # five seeds are new
    assert [r.nct_id for r in records] == sorted(r.nct_id for r in records)


def test_seed_cluster_read_last_replaces_the_bulk_record(shared_data: Path, json_then_seed) -> None:
    records, report = json_then_seed
    seed_path = shared_data / SEED_CLUSTER
    expected = parse_study(json.loads((seed_path / "NCT02857010.json").read_text()))
    matching = [r for r in records if r.nct_id == "NCT02857010"]
    assert matching == [expected]
    assert expected.arm_groups  # the seed version, not the bulk one (titles and texts only)
    assert report.replaced == 1
    assert report.sources[1] == SourceSummary(
        str(seed_path), "json-dir", read=6, skipped=0, ignored=1
    )
    # expected_related.json is a .json label file: noted as ignored, not a failure;
    # NCT05940610.page.txt is not a registry file by name and is passed over.
    assert report.ignored == [
        SkippedItem(
            str(seed_path),
            "expected_related.json",
            "not a study: a JSON object without 'protocolSection' (keys: 'NCT05940610')",
        )
    ]
