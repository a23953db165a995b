"""The MeSH development label rule, on hand-made records and on the real subset."""

import json
import random
from pathlib import Path

import pytest

from recommender.cli import EXIT_OK, main
from recommender.core import TrialRecord
from recommender.evaluation import MeshRule, build_dev_labels, load_labels, meta_path, write_labels

REPO = Path(__file__).resolve().parents[1]
COMMITTED = REPO / "data" / "dev-labels" / "mesh-dev.json"


def trial(n: int, conditions: tuple[str, ...], interventions: tuple[str, ...]) -> TrialRecord:
    return TrialRecord(
        f"NCT{n:08d}", condition_mesh_terms=conditions, intervention_mesh_terms=interventions
    )


RECORDS = [
    trial(1, ("Asthma", "Rhinitis"), ("Budesonide",)),
    trial(2, ("asthma", "rhinitis"), ("Budesonide",)),  # identical sets (case aside)
    trial(3, ("Asthma",), ("Budesonide",)),  # conditions 1/2, interventions 1
    trial(4, ("Asthma", "Eczema", "Urticaria"), ("Budesonide",)),  # conditions 1/4
    trial(5, ("Asthma", "Rhinitis"), ()),  # no intervention MeSH: outside the pool
    trial(6, ("Gout",), ("Allopurinol",)),  # shares nothing
]


def test_the_rule_by_hand():
    built = build_dev_labels(RECORDS, MeshRule(min_relevant=2, max_queries=10))
    ids = {n: f"NCT{n:08d}" for n in range(1, 7)}
    assert built.judgements == {
        ids[1]: {ids[2]: 2, ids[3]: 1, ids[4]: 0},
        ids[2]: {ids[1]: 2, ids[3]: 1, ids[4]: 0},
        ids[3]: {ids[1]: 1, ids[2]: 1, ids[4]: 0},  # 3 vs 4: conditions 1/3
    }
    assert built.counts["pool"] == 5 and built.counts["eligible_queries"] == 3
    assert built.held_out == []


def test_sampling_and_near_misses_are_deterministic_and_order_free():
    rule = MeshRule(min_relevant=2, max_queries=2, near_misses=0)
    first = build_dev_labels(RECORDS, rule)
    shuffled = RECORDS[:]
    random.Random(1).shuffle(shuffled)
    again = build_dev_labels(shuffled, rule)
    assert first.judgements == again.judgements and len(first.judgements) == 2
    assert len(first.held_out) == 1
    assert all(g > 0 for judged in first.judgements.values() for g in judged.values())


def test_stricter_thresholds_drop_pairs():
    rule = MeshRule(min_condition_jaccard=1.0, min_intervention_jaccard=1.0, min_relevant=1)
    built = build_dev_labels(RECORDS, rule)
    assert {q: built.judgements[q] for q in built.judgements} == {
        "NCT00000001": {"NCT00000002": 2, "NCT00000003": 0, "NCT00000004": 0},
        "NCT00000002": {"NCT00000001": 2, "NCT00000003": 0, "NCT00000004": 0},
    }


def test_bad_rules_are_refused():
    with pytest.raises(ValueError):
        MeshRule(min_condition_jaccard=0)
    with pytest.raises(ValueError):
        MeshRule(max_queries=0)


def test_written_labels_read_back_as_graded(tmp_path):
    built = build_dev_labels(RECORDS, MeshRule(min_relevant=1))
    path = write_labels(built.judgements, tmp_path / "labels.json")
    labels = load_labels(path)
    assert labels.graded and labels.judgements == built.judgements
    assert meta_path(path).name == "labels.meta.json"
    assert "Jaccard >= 0.5" in built.meta()["description"]


def test_the_committed_file_is_well_formed():
    labels = load_labels(COMMITTED)
    meta = json.loads(meta_path(COMMITTED).read_text())
    assert labels.graded and len(labels) == meta["counts"]["queries"] == 500
    assert sum(map(len, labels.judgements.values())) == meta["counts"]["judgements"]
    assert all(len(labels.relevant(q)) >= meta["rule"]["min_relevant"] for q in labels.judgements)


@pytest.mark.corpus
def test_the_committed_file_is_what_the_rule_builds(shared_data, tmp_path, capsys):
    out = tmp_path / "mesh-dev.json"
    source = shared_data / "AllPublicXML-2023-subset.zip"
    assert main(["labels", "--source", str(source), "--out", str(out)]) == EXIT_OK
    assert "500 queries" in capsys.readouterr().out
    assert out.read_text() == COMMITTED.read_text()
    fresh, committed = (json.loads(meta_path(p).read_text()) for p in (out, COMMITTED))
    assert fresh["counts"] == committed["counts"] and fresh["rule"] == committed["rule"]
