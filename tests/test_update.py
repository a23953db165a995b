"""``recommender update``: new, changed and withdrawn studies without a rebuild.

The central check: after an update, every stored list equals an exact all-pairs
search over the final records vectorised with the base build's vocabulary.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from recommender.cli import EXIT_BAD_INPUT, EXIT_OK, main
from recommender.index import META_FILE, TrialIndex
from recommender.ingest import STATE_FILE, FetchQuery, FetchState
from recommender.ingest.registry import DEFAULT_BASE_URL
from recommender.neighbours import NO_NEIGHBOUR, CosineNeighbours, update_neighbours
from recommender.pipelines import build_index
from recommender.pipelines.update import DriftThresholds, UpdateInputError, update_index
from recommender.text import DEFAULT_FIELD_GROUPS
from tests.factories import study_json, write_studies

GROUPS = [replace(g, min_df=1, max_df=1.0) for g in DEFAULT_FIELD_GROUPS]
WORDS = [
    "acute",
    "chronic",
    "liver",
    "kidney",
    "heart",
    "lung",
    "failure",
    "injury",
    "infection",
    "fibrosis",
    "cancer",
    "tumour",
    "adult",
    "child",
    "elderly",
    "pain",
    "fatigue",
    "sleep",
    "diet",
    "exercise",
    "dose",
    "safety",
    "efficacy",
    "quality",
    "outcome",
    "survival",
    "relapse",
    "remission",
    "marker",
    "imaging",
    "biopsy",
    "surgery",
    "therapy",
    "vaccine",
    "insulin",
    "glucose",
    "pressure",
    "rhythm",
]
CONDITIONS = ["Asthma", "Diabetes", "Heart Failure", "Breast Cancer", "Sepsis", "Psoriasis"]
DRUGS = ["Metformin", "Insulin", "Budesonide", "Tamoxifen", "Aspirin", "Placebo", "Statin"]
STATUSES = ["RECRUITING", "COMPLETED", "WITHDRAWN", "ACTIVE_NOT_RECRUITING"]


def synthetic_study(rng: random.Random, number: int, updated: str = "2024-01-10") -> dict:
    """A study drawn from a small vocabulary, so that many pairs of studies score."""
    study = study_json(
        f"NCT{number:08d}",
        " ".join(rng.sample(WORDS, rng.randint(2, 4))),
        summary=" ".join(rng.choices(WORDS, k=rng.randint(4, 12))),
        conditions=tuple(rng.sample(CONDITIONS, rng.randint(1, 2))),
        interventions=tuple(("DRUG", d) for d in rng.sample(DRUGS, rng.randint(0, 2))),
        status=rng.choice(STATUSES),
    )
    return _dated(study, updated)


def _dated(study: dict, updated: str) -> dict:
    status = study["protocolSection"].setdefault("statusModule", {})
    status["lastUpdatePostDateStruct"] = {"date": updated}
    return study


def _with_id(study: dict, number: int) -> dict:
    copy = json.loads(json.dumps(study))
    copy["protocolSection"]["identificationModule"]["nctId"] = f"NCT{number:08d}"
    return copy


def _id(study: dict) -> str:
    return study["protocolSection"]["identificationModule"]["nctId"]


class Scenario:
    """A base corpus and the registry some days later: new, rewritten, re-statused,
    stale and withdrawn studies, with exact duplicates to make tied scores."""

    def __init__(self, seed: int, n: int = 60) -> None:
        rng = random.Random(seed)
        self.base = [synthetic_study(rng, i) for i in range(1, n + 1)]
        self.base.append(_with_id(self.base[0], n + 1))  # a twin: tied scores
        by_id = {_id(s): s for s in self.base}
        self.removed = {f"NCT{i:08d}" for i in rng.sample(range(1, n + 1), 5)}
        kept = sorted(set(by_id) - self.removed)
        picks = rng.sample(kept, 9)
        self.rewritten, self.restatused, self.stale = picks[:6], picks[6:8], picks[8]
        later = {}
        for nct_id in self.rewritten:
            later[nct_id] = synthetic_study(rng, int(nct_id[3:]), updated="2024-03-01")
        for nct_id in self.restatused:
            study = json.loads(json.dumps(by_id[nct_id]))
            study["protocolSection"]["statusModule"]["overallStatus"] = "TERMINATED"
            later[nct_id] = _dated(study, "2024-03-02")
        # An older copy of a study: the indexed, newer one must be kept.
        old = _dated(json.loads(json.dumps(by_id[self.stale])), "2023-01-01")
        old["protocolSection"]["identificationModule"]["briefTitle"] = "an outdated title"
        later[self.stale] = old
        self.new = [synthetic_study(rng, n + 10 + i, updated="2024-03-03") for i in range(8)]
        self.new.append(_with_id(self.base[5], n + 30))  # an exact copy of an indexed study
        novel = study_json(f"NCT{n + 31:08d}", "Zanubrutinib for waldenstrom macroglobulinemia")
        self.new.append(_dated(novel, "2024-03-04"))  # no known word: an all-zero vector
        self.changed = list(later.values())
        self.snapshot = [later.get(nct_id, by_id[nct_id]) for nct_id in kept] + self.new

    def build(self, tmp_path: Path, k: int, method: str = "exact") -> Path:
        source = write_studies(tmp_path / "base-studies", self.base)
        out = tmp_path / "base"
        build_index([source], out, groups=GROUPS, k=k, n_jobs=1, neighbour_method=method)
        return out


def reference_lists(index: TrialIndex, k: int) -> tuple[np.ndarray, np.ndarray, object]:
    """Exact all-pairs lists over the index's records, with its (base) vocabulary."""
    records = [index.records[i] for i in range(len(index))]
    vectors = index.vectorizer.transform(records)
    search = CosineNeighbours(method="exact", n_jobs=1).fit(vectors)
    return (*search.all_kneighbors(vectors, k), vectors)


def assert_same_lists(ids, scores, ref_ids, ref_scores, atol=1e-6) -> None:
    """Equal lists, allowing only exactly tied scores at the k-th place to differ."""
    np.testing.assert_allclose(scores, ref_scores, atol=atol)
    for row in range(len(ids)):
        kth = ref_scores[row, -1]
        for i, s in zip(ids[row], scores[row], strict=True):
            if i != NO_NEIGHBOUR and s > kth + atol:
                at = np.flatnonzero(ref_ids[row] == i)
                assert len(at) == 1, f"row {row}: {i} missing from the reference list"
                assert abs(ref_scores[row, at[0]] - s) <= atol
        assert np.count_nonzero(ids[row] == NO_NEIGHBOUR) == np.count_nonzero(
            ref_ids[row] == NO_NEIGHBOUR
        )


@pytest.mark.parametrize("seed, k", [(0, 5), (1, 3), (2, 8)])
def test_snapshot_update_equals_an_exact_rebuild_with_the_same_vocabulary(tmp_path, seed, k):
    scenario = Scenario(seed)
    base_path = scenario.build(tmp_path, k)
    base = TrialIndex.load(base_path)
    source = write_studies(tmp_path / "snapshot", scenario.snapshot)
    summary = update_index(
        base_path,
        [source],
        out=tmp_path / "updated",
        snapshot=True,
        max_removed_share=0.1,
        n_jobs=1,
    )
    updated = TrialIndex.load(tmp_path / "updated")

    expected_ids = sorted({_id(s) for s in scenario.snapshot})
    assert list(updated.ids) == expected_ids
    assert updated.vectorizer.get_state()[1] == base.vectorizer.get_state()[1]  # no refit
    ref_ids, ref_scores, ref_vectors = reference_lists(updated, k)
    np.testing.assert_allclose(updated.vectors.toarray(), ref_vectors.toarray(), rtol=1e-6)
    assert_same_lists(updated.neighbour_indices, updated.neighbour_scores, ref_ids, ref_scores)

    c = summary.changes
    assert (len(c.added), len(c.replaced), len(c.removed), len(c.stale)) == (10, 8, 5, 1)
    assert summary.text_changed == 6  # the re-statused two keep their vectors
    assert summary.neighbours["recomputed"] < len(updated)  # not a rebuild in disguise
    assert summary.neighbours["merged"] > 0


def test_update_replaces_changes_keeps_newer_records_and_drops_withdrawn(tmp_path):
    scenario = Scenario(3)
    base_path = scenario.build(tmp_path, k=5)
    source = write_studies(tmp_path / "snapshot", scenario.snapshot)
    update_index(base_path, [source], snapshot=True, max_removed_share=0.1, n_jobs=1)  # in place
    index = TrialIndex.load(base_path)
    for nct_id in scenario.removed:
        assert nct_id not in index
    listed = {str(index.ids[i]) for i in np.asarray(index.neighbour_indices).ravel() if i >= 0}
    assert not listed & scenario.removed
    assert index.record(scenario.restatused[0]).overall_status == "TERMINATED"
    assert index.record(scenario.stale).brief_title != "an outdated title"
    terminated = index.facets.allowed({"status": ["TERMINATED"]})
    assert {str(i) for i in index.ids[terminated]} >= set(scenario.restatused)
    assert index.record(scenario.rewritten[0]).last_update_date == "2024-03-01"


def test_incremental_update_without_snapshot_removes_nothing(tmp_path):
    scenario = Scenario(4)
    base_path = scenario.build(tmp_path, k=5)
    source = write_studies(tmp_path / "changes", scenario.changed + scenario.new)
    summary = update_index(base_path, [source], out=tmp_path / "updated", n_jobs=1)
    updated = TrialIndex.load(tmp_path / "updated")
    assert summary.changes.removed == [] and len(updated) == len(scenario.base) + 10
    ref_ids, ref_scores, _ = reference_lists(updated, 5)
    assert_same_lists(updated.neighbour_indices, updated.neighbour_scores, ref_ids, ref_scores)
    meta = updated.meta
    assert meta["update"]["added"] == 10 and meta["update"]["snapshot"] is False
    assert meta["update"]["last_update_dates"] == {"min": "2024-01-10", "max": "2024-03-04"}
    report = json.loads((tmp_path / "updated" / "build_report.json").read_text())
    assert report["update"]["stale_kept"][0]["nct_id"] == scenario.stale
    assert "sources" in report["build"]


def test_drift_accumulates_and_advises_a_rebuild(tmp_path):
    scenario = Scenario(5)
    base_path = scenario.build(tmp_path, k=4)
    base_meta = TrialIndex.load(base_path).meta
    first = write_studies(tmp_path / "first", scenario.new[:3])
    summary = update_index(base_path, [first], n_jobs=1, thresholds=DriftThresholds(0.5, 0.5))
    assert summary.drift["added"] == 3 and not summary.drift["rebuild_advised"]
    second = write_studies(tmp_path / "second", scenario.new[3:])
    summary = update_index(base_path, [second], n_jobs=1)
    drift = TrialIndex.load(base_path).meta["drift"]
    assert drift == summary.drift
    assert (drift["updates"], drift["added"]) == (2, 10)
    assert drift["full_build_at"] == base_meta["built_at"]
    assert drift["changed_share"] == round(10 / len(scenario.base), 4)
    # zanubrutinib, waldenstrom, macroglobulinemia: each read by the titles and text groups
    assert drift["unseen_tokens"] == 6
    assert drift["rebuild_advised"] and "new or rewritten" in drift["reasons"][0]
    assert "full rebuild advised" in summary.format()


def test_nothing_new_leaves_the_index_alone(tmp_path):
    scenario = Scenario(6)
    base_path = scenario.build(tmp_path, k=3)
    before = (base_path / META_FILE).stat().st_mtime_ns
    source = write_studies(tmp_path / "same", scenario.base[:10])
    summary = update_index(base_path, [source], n_jobs=1)
    assert not summary.written and summary.changes.unchanged == 10
    assert (base_path / META_FILE).stat().st_mtime_ns == before


def test_an_index_without_the_newer_meta_fields_updates(tmp_path):
    scenario = Scenario(7)
    base_path = scenario.build(tmp_path, k=3, method="pruned")
    meta = json.loads((base_path / META_FILE).read_text())
    del meta["neighbour_method"]
    (base_path / META_FILE).write_text(json.dumps(meta))
    source = write_studies(tmp_path / "new", scenario.new)
    summary = update_index(base_path, [source], n_jobs=1)
    index = TrialIndex.load(base_path)
    assert summary.changes.added and len(index) == len(scenario.base) + 10
    assert "neighbour_method" not in index.meta
    # New trials got an exact search whatever the base build's method.
    ref_ids, ref_scores, _ = reference_lists(index, 3)
    rows = [index.position(_id(s)) for s in scenario.new]
    assert_same_lists(
        index.neighbour_indices[rows], index.neighbour_scores[rows], ref_ids[rows], ref_scores[rows]
    )


def test_snapshot_refuses_a_filtered_or_unfinished_download(tmp_path):
    scenario = Scenario(8)
    base_path = scenario.build(tmp_path, k=3)
    folder = write_studies(tmp_path / "download", scenario.new)
    version = {"dataTimestamp": "2025-01-15T09:00:05"}
    query = asdict(FetchQuery(cond="asthma"))
    state = FetchState(DEFAULT_BASE_URL, query, version, "2025-01-15", done=True)
    (folder / STATE_FILE).write_text(json.dumps(asdict(state)))
    with pytest.raises(UpdateInputError, match="filtered or capped"):
        update_index(base_path, [folder], snapshot=True, n_jobs=1)
    state.query, state.done = asdict(FetchQuery()), False
    (folder / STATE_FILE).write_text(json.dumps(asdict(state)))
    with pytest.raises(UpdateInputError, match="unfinished download"):
        update_index(base_path, [folder], snapshot=True, n_jobs=1)
    update_index(base_path, [folder], n_jobs=1)  # as a plain update it is fine


def test_snapshot_refuses_to_remove_much_of_the_index(tmp_path):
    scenario = Scenario(11)
    base_path = scenario.build(tmp_path, k=3)
    source = write_studies(tmp_path / "part", scenario.base[:30])
    with pytest.raises(UpdateInputError, match="is it the whole registry"):
        update_index(base_path, [source], snapshot=True, n_jobs=1)
    assert len(TrialIndex.load(base_path)) == len(scenario.base)


def test_merge_falls_back_to_a_search_when_a_trial_drops_out():
    # Rows 0-3 share a word; row 1 is rewritten away, so row 0's list loses a member
    # whose replacement (row 3, outside the old k=2 list) only a search finds.
    X = np.array(
        [[1.0, 0.2, 0, 0], [1.0, 0.3, 0, 0], [1.0, 0.1, 0, 0], [1.0, 0.0, 0, 0], [0, 0, 1.0, 0]],
        dtype=np.float32,
    )
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    old = CosineNeighbours(method="exact", n_jobs=1).fit(sp.csr_matrix(X))
    old_ids, old_scores = old.all_kneighbors(sp.csr_matrix(X), 2)
    X[1] = [0, 0, 0.6, 0.8]
    new = sp.csr_matrix(X)
    ids, scores, work = update_neighbours(
        new, old_ids, old_scores, np.arange(5), np.array([1]), n_jobs=1
    )
    ref_ids, ref_scores = CosineNeighbours(method="exact", n_jobs=1).fit(new).all_kneighbors(new, 2)
    assert_same_lists(ids, scores, ref_ids, ref_scores)
    assert work["recomputed"] > 1  # the fresh row, and at least one list that lost a member


# -- the command ------------------------------------------------------------------------


def test_cli_update(tmp_path, capsys):
    scenario = Scenario(9)
    base_path = scenario.build(tmp_path, k=3)
    source = write_studies(tmp_path / "snapshot", scenario.snapshot)
    args = ["update", "--index", str(base_path), "--source", str(source), "--snapshot",
            "--max-removed", "0.1", "--jobs", "1", "--quiet"]  # fmt: skip
    assert main(args) == EXIT_OK
    out = capsys.readouterr().out
    assert f"index written to {base_path}" in out
    assert "added 10, changed 8 (6 in their text), removed 5" in out
    assert "neighbour lists:" in out and "since the full build of" in out


def test_cli_update_bad_input_exits_2(tmp_path, capsys):
    source = write_studies(tmp_path / "s", [study_json("NCT00000001", "A trial")])
    args = ["update", "--index", str(tmp_path / "none"), "--source", str(source)]
    assert main(args) == EXIT_BAD_INPUT
    assert "no index at" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["update", "--source", str(source), "--max-changed", "2"])
    assert exc.value.code == EXIT_BAD_INPUT


def test_a_list_whose_only_member_is_withdrawn_is_searched_again():
    X = np.array([[1.0, 0.1, 0], [1.0, 0.2, 0], [0.5, 0, 1.0]], dtype=np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    old = CosineNeighbours(method="exact", n_jobs=1).fit(sp.csr_matrix(X))
    old_ids, old_scores = old.all_kneighbors(sp.csr_matrix(X), 1)
    assert old_ids[0, 0] == 1
    new = sp.csr_matrix(X[[0, 2]])
    ids, scores, _ = update_neighbours(
        new, old_ids, old_scores, np.array([0, -1, 1]), np.array([], dtype=np.int64), n_jobs=1
    )
    assert ids[0, 0] == 1 and scores[0, 0] == pytest.approx(float(X[0] @ X[2]), abs=1e-6)


def test_cli_build_exact_records_the_method(tmp_path):
    source = write_studies(tmp_path / "s", Scenario(10).base)
    args = ["build", "--source", str(source), "--out", str(tmp_path / "ix"), "-k", "3",
            "--jobs", "1", "--quiet", "--exact"]  # fmt: skip
    assert main(args) == EXIT_OK
    assert TrialIndex.load(tmp_path / "ix").meta["neighbour_method"] == "exact"


def _inodes(served: Path) -> dict[str, int]:
    folder = Path(os.path.realpath(served))
    return {p.name: p.stat().st_ino for p in folder.iterdir()}


def test_update_links_unchanged_files_instead_of_rewriting_them(tmp_path):
    scenario = Scenario(8)
    base_path = scenario.build(tmp_path, k=4)
    before = _inodes(base_path)
    restatused = [s for s in scenario.changed if _id(s) in scenario.restatused]
    update_index(base_path, [write_studies(tmp_path / "status", restatused)], n_jobs=1)
    after = _inodes(base_path)
    same = {name for name in after if after[name] == before.get(name)}
    # A new status moves no vector and no list: only the two changed records (a new
    # record segment and the table of where each record is), their facet and the
    # metadata are new files.
    new_files = {"records.1.jsonl", "records.spans.npy", "facet.status.npy"}
    assert set(after) - same == new_files | {"build_report.json", "meta.json"}
    assert sorted(TrialIndex.load(base_path).meta["linked_from_previous"]) == sorted(same)
    assert (Path(os.path.realpath(base_path)) / "records.1.jsonl").read_bytes().count(b"\n") == 2
    rewritten = [s for s in scenario.changed if _id(s) in scenario.rewritten]
    update_index(base_path, [write_studies(tmp_path / "text", rewritten)], n_jobs=1)
    again = _inodes(base_path)
    for name in ("vocabulary.json", "idf.npy", "ids.npy", "records.jsonl", "records.1.jsonl"):
        assert again[name] == after[name], name
    assert again["vectors.data.npy"] != before["vectors.data.npy"]
    index = TrialIndex.load(base_path)  # every linked file still matches its recorded hash
    assert index.meta["counts"]["record_segments"] == 3
    expected = {_id(s): s for s in scenario.base} | {_id(s): s for s in restatused + rewritten}
    titles = [r.brief_title for r in index.records]
    assert titles == [
        expected[i]["protocolSection"]["identificationModule"]["briefTitle"] for i in index.ids
    ]


def test_record_segments_are_compacted_when_too_many(tmp_path, monkeypatch):
    scenario = Scenario(9)
    base_path = scenario.build(tmp_path, k=4)
    monkeypatch.setattr("recommender.index.writer.MAX_SEGMENTS", 2)
    first, second = scenario.changed[:3], scenario.changed[3:6]
    update_index(base_path, [write_studies(tmp_path / "one", first)], n_jobs=1)
    assert TrialIndex.load(base_path).meta["counts"]["record_segments"] == 2
    update_index(base_path, [write_studies(tmp_path / "two", second)], n_jobs=1)
    index = TrialIndex.load(base_path)
    assert index.meta["counts"]["record_segments"] == 1
    assert not (index.path / "records.spans.npy").exists()
    assert [r.nct_id for r in index.records] == index.ids.tolist()


def test_the_service_shows_an_updated_index_records(tmp_path):
    # An update appends its records as a segment: every way the service reads a
    # record (the fast lookup's partial decode, the JSON record) must find that one.
    from fastapi.testclient import TestClient

    from api.app import create_app

    scenario = Scenario(3)
    base_path = scenario.build(tmp_path, k=5)
    source = write_studies(tmp_path / "snapshot", scenario.snapshot)
    update_index(base_path, [source], snapshot=True, max_removed_share=0.1, n_jobs=1)
    index = TrialIndex.load(base_path)
    assert index.meta["counts"].get("record_segments", 1) > 1
    with TestClient(create_app(base_path, warm=False)) as client:
        for position in range(len(index)):
            nct_id = str(index.ids[position])
            title = index.records[position].brief_title
            assert client.get(f"/trials/{nct_id}").json()["brief_title"] == title
            for result in client.get(f"/similar/{nct_id}?k=5").json()["results"]:
                assert result["title"] == index.record(result["nct_id"]).brief_title
