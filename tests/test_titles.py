"""Every result has a title to show, the same one in every view.

A record without a brief or official title (common in registry extracts) is shown
with one made from its conditions and interventions, else its summary's first
sentence, marked as made: ``title_made`` in JSON and Python, brackets on the command
line, a ``made`` span on the pages and in the embeddable box.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from recommender.cli import EXIT_OK, main
from recommender.core import DisplayTitle, TrialRecord, display_title, draft_record, draft_title
from recommender.search import open_index
from tests.factories import TINY_STUDIES, build_tiny_index, study_json

LISTS_ONLY = "NCT00000011"
SUMMARY_ONLY = "NCT00000012"
LISTS_TITLE = "Lung Cancer: Cisplatin; Etoposide"
SUMMARY_TITLE = "Cisplatin and etoposide given to patients with small cell lung cancer."
UNTITLED = [
    study_json(
        LISTS_ONLY,
        "",
        conditions=("Lung Cancer",),
        interventions=(("DRUG", "Cisplatin"), ("DRUG", "Etoposide")),
        status="COMPLETED",
        phases=("PHASE2",),
    ),
    study_json(
        SUMMARY_ONLY,
        "",
        summary=f"{SUMMARY_TITLE} Dr. Who wrote the protocol. Cisplatin dosing follows.",
        status="RECRUITING",
    ),
    study_json("NCT00000013", "Cisplatin in lung cancer", conditions=("Lung Cancer",)),
]


# -- the rule -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"brief_title": "Brief", "official_title": "Official"}, DisplayTitle("Brief")),
        ({"official_title": "  Official  title "}, DisplayTitle("Official title")),
        (
            {"conditions": ["lung cancer"], "interventions": ["cisplatin", "etoposide"]},
            DisplayTitle("Lung cancer: cisplatin; etoposide", made=True),
        ),
        ({"conditions": ["Asthma", "asthma"]}, DisplayTitle("Asthma", made=True)),
        ({"interventions": ["Budesonide"]}, DisplayTitle("Budesonide", made=True)),
        (
            {"conditions": ["A", "B", "C", "D", "E"], "interventions": ["X"]},
            DisplayTitle("A; B; C and 2 more: X", made=True),
        ),
        (
            {"summary": "Compare A vs. B in adults (J. Doe, Dr. Roe). Then more."},
            DisplayTitle("Compare A vs. B in adults (J. Doe, Dr. Roe).", made=True),
        ),
        ({}, DisplayTitle("Trial NCT00000099", made=True)),
    ],
)
def test_the_title_shown_falls_back_in_order(fields, expected):
    assert display_title("NCT00000099", **fields) == expected


def test_a_made_title_is_cut_at_a_word():
    title = display_title("NCT00000099", summary="word " * 100).text
    assert len(title) <= 120 and title.endswith("word\u2026")


def test_a_record_and_a_draft_use_the_same_rule():
    record = TrialRecord("NCT00000099", conditions=("Asthma",))
    assert record.display_title == DisplayTitle("Asthma", made=True)
    assert record.title == ""  # the registry's own title stays as it was
    draft = draft_record(conditions=["Asthma"])
    assert draft_title(draft) == DisplayTitle("Asthma", made=True)
    assert draft_title(draft, "inhaled steroids  for asthma") == DisplayTitle(
        "inhaled steroids for asthma", made=True
    )
    assert draft_title(draft_record(title="Mine"), "text") == DisplayTitle("Mine")
    assert draft_title(draft_record(keywords=["x"])) == DisplayTitle("Your draft trial", True)


# -- the same in every view -------------------------------------------------------------


@pytest.fixture(scope="module")
def untitled_index(tmp_path_factory) -> Path:
    return build_tiny_index(tmp_path_factory.mktemp("untitled"), studies=TINY_STUDIES + UNTITLED)


@pytest.fixture(scope="module")
def client(untitled_index) -> TestClient:
    return TestClient(create_app(untitled_index, warm=False))


def test_json_results_carry_the_made_title(client):
    # The lookup (the fast path) and a filtered search (the route) alike.
    for path in (f"/similar/{SUMMARY_ONLY}", f"/similar/{SUMMARY_ONLY}?status=COMPLETED"):
        results = {r["nct_id"]: r for r in client.get(path).json()["results"]}
        assert results[LISTS_ONLY]["title"] == LISTS_TITLE
        assert results[LISTS_ONLY]["title_made"] is True
        assert all(r["title_made"] is False for r in results.values() if r["nct_id"] > LISTS_ONLY)
    body = client.get(f"/similar/{LISTS_ONLY}").json()
    assert (body["title"], body["title_made"]) == (LISTS_TITLE, True)
    assert {r["nct_id"]: r["title"] for r in body["results"]}[SUMMARY_ONLY] == SUMMARY_TITLE


def test_a_posted_query_gets_a_title_too(client):
    body = client.post("/similar", json={"conditions": ["Lung Cancer"]}).json()
    assert (body["title"], body["title_made"]) == ("Lung Cancer", True)
    body = client.post("/similar", json={"title": "Mine", "text": "lung cancer"}).json()
    assert (body["title"], body["title_made"]) == ("Mine", False)


def test_pages_and_the_box_show_the_made_title_apart(client):
    made = '<span class="made" title="no title in the record'
    page = client.get(f"/?q={SUMMARY_ONLY}").text
    assert f'{made}: made from its conditions and interventions, or summary">{LISTS_TITLE}' in (
        page
    )
    assert '<h2>Trials like: <span class="made"' in page
    box = client.get(f"/embed/{SUMMARY_ONLY}").text
    assert LISTS_TITLE in box and made in box
    trial = client.get(f"/trials/{LISTS_ONLY}/page").text
    assert f"<title>{LISTS_TITLE} · {LISTS_ONLY}" in trial
    assert f"<h2>{made}" in trial


def test_the_command_line_brackets_a_made_title(untitled_index, capsys):
    args = ["similar", SUMMARY_ONLY, "--index", str(untitled_index)]
    assert main(args) == EXIT_OK
    out = capsys.readouterr().out
    assert f"trials like {SUMMARY_ONLY}: [{SUMMARY_TITLE}]" in out
    assert f"{LISTS_ONLY}" in out and f"[{LISTS_TITLE}]" in out
    assert main([*args, "--json"]) == EXIT_OK
    rows = {r["nct_id"]: r for r in json.loads(capsys.readouterr().out)["results"]}
    assert (rows[LISTS_ONLY]["title"], rows[LISTS_ONLY]["title_made"]) == (LISTS_TITLE, True)


def test_python_results_match_the_json_api(untitled_index, client):
    results = open_index(untitled_index).similar(SUMMARY_ONLY)
    served = client.get(f"/similar/{SUMMARY_ONLY}").json()["results"]
    assert [(r.nct_id, r.title, r.title_made) for r in results] == [
        (r["nct_id"], r["title"], r["title_made"]) for r in served
    ]
