"""Who runs a trial and where: collaborators, officials and sites, read from the registry's
XML and explained as whole names, in the Python API, the JSON API and the trial's page."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import recommender
from api.app import create_app
from recommender.ingest import extract_sources
from recommender.pipelines import build_index

TEXT = "Buprenorphine maintenance for opioid dependence in adults, a randomized trial."


def study_xml(nct_id: str, title: str, officials: list[str], sites: list[str]) -> str:
    """A legacy XML record with the team fields the JSON extract lacks."""
    people = "".join(
        f"<overall_official><last_name>{name}</last_name><role>Principal Investigator</role>"
        "</overall_official>"
        for name in officials
    )
    places = "".join(
        f"<location><facility><name>{site}</name></facility></location>" for site in sites
    )
    return (
        f"<clinical_study><id_info><nct_id>{nct_id}</nct_id></id_info>"
        f"<brief_title>{title}</brief_title>"
        f"<brief_summary><textblock>{TEXT}</textblock></brief_summary>"
        "<sponsors><lead_sponsor><agency>NIDA</agency></lead_sponsor>"
        "<collaborator><agency>VA Office of Research and Development</agency></collaborator>"
        f"</sponsors>{people}{places}</clinical_study>"
    )


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six buprenorphine trials alike in text: two share their official (written two
    ways) and a site; the others have other officials or a sponsor's placeholder."""
    tmp = tmp_path_factory.mktemp("team")
    many_sites = [f"Site Hospital {chr(65 + i)}" for i in range(12)]
    records = [
        ("NCT00000101", "Buprenorphine for opioid dependence", ["Walter Ling, M.D."],
         ["Matrix Institute on Addictions, 5220 West Washington Blvd", *many_sites]),
        ("NCT00000102", "Buprenorphine dose for opioid dependence", ["Walter Ling, MD"],
         ["Matrix Institute on Addictions"]),
        ("NCT00000103", "Buprenorphine taper for opioid dependence", ["Medical Monitor"],
         ["GSK Investigational Site"]),
        ("NCT00000104", "Buprenorphine dosing in opioid dependence", ["Medical Monitor"],
         ["GSK Investigational Site"]),
        ("NCT00000105", "Buprenorphine induction for opioid dependence", ["Thomas Kosten"],
         ["Yale University"]),
        ("NCT00000106", "Buprenorphine clinic for opioid dependence", ["Thomas Kosten"],
         ["Yale University"]),
    ]  # fmt: skip
    archive_path = tmp / "data" / "AllPublicXML.zip"
    archive_path.parent.mkdir()
    with zipfile.ZipFile(archive_path, "w") as archive:
        for nct_id, title, officials, sites in records:
            xml = study_xml(nct_id, title, officials, sites)
            archive.writestr(f"NCT0000xxxx/{nct_id}.xml", xml)
    return build_index([archive_path], tmp / "index", k=5, n_jobs=1).path


def test_a_shared_official_and_site_rank_first_and_are_the_reason(index: Path) -> None:
    trials = recommender.open_index(index)
    first = trials.similar("NCT00000101", k=5, why=True)[0]
    assert first.nct_id == "NCT00000102"
    team = next(w for w in first.why if w.field == "team")
    # Whole names, without degrees or the address (the collaborator all six share is
    # too common to tell them apart).
    assert set(team.terms) == {"walter ling", "matrix institute on addictions"}
    assert sum(w.score for w in first.why) == pytest.approx(first.score)


def test_a_role_or_a_placeholder_site_is_no_reason(index: Path) -> None:
    trials = recommender.open_index(index)
    for result in trials.similar("NCT00000103", k=5, why=True):
        for part in result.why:
            assert not {"medical monitor", "gsk investigational site"} & set(part.terms)
            assert sum(w.score for w in result.why) == pytest.approx(result.score)


def test_the_record_and_its_page_show_who_runs_it_and_where(index: Path) -> None:
    client = TestClient(create_app(index))
    record = client.get("/trials/NCT00000101").json()
    assert record["officials"] == ["Walter Ling, M.D."]  # as the registry gives it
    assert record["collaborators"] == ["VA Office of Research and Development"]
    assert record["sites"][0] == "Matrix Institute on Addictions, 5220 West Washington Blvd"
    html = client.get("/trials/NCT00000101/page").text
    assert '<dd id="officials">Walter Ling, M.D.</dd>' in html
    assert "and 3 more</dd>" in html  # 13 sites: the first ten are listed


def test_the_extract_is_read_json_then_xml_then_the_reference_trials(tmp_path: Path) -> None:
    for name in ("ctg-studies.json.zip", "AllPublicXML-2023-subset.zip"):
        (tmp_path / name).write_bytes(b"")
    assert extract_sources(tmp_path) == [
        tmp_path / "ctg-studies.json.zip",
        tmp_path / "AllPublicXML-2023-subset.zip",
    ]
    (tmp_path / "seed-cluster").mkdir()
    assert extract_sources(tmp_path)[-1] == tmp_path / "seed-cluster"
