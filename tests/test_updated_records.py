"""An update's records: kept ones read from the base store only when asked for."""

import random
from pathlib import Path

import numpy as np
import pytest

from recommender.core import Facets, RecordStore, TrialRecord, encode_record, write_records
from recommender.index import UpdatedRecords
from recommender.index.updated_records import merge_ids

STATUSES = [None, "RECRUITING", "COMPLETED", "TERMINATED", "WITHDRAWN"]
PHASES = [(), ("PHASE1",), ("PHASE1", "PHASE2"), ("PHASE3",), ("NA",), ("EARLY_PHASE1",)]
TYPES = [None, "INTERVENTIONAL", "OBSERVATIONAL"]


def trial(number: int, rng: random.Random, **fields) -> TrialRecord:
    drawn = {
        "brief_title": f"trial {number} {rng.random():.3f}",
        "overall_status": rng.choice(STATUSES),
        "phases": rng.choice(PHASES),
        "study_type": rng.choice(TYPES),
    }
    return TrialRecord(f"NCT{number:08d}", **(drawn | fields))


def store_of(records: list[TrialRecord], folder: Path) -> RecordStore:
    write_records(records, folder / "records.jsonl", folder / "offsets.npy")
    return RecordStore(folder / "records.jsonl", folder / "offsets.npy")


def an_update(tmp_path: Path, seed: int):
    """A base store, and an update removing, rewriting and adding some of its records."""
    rng = random.Random(seed)
    base = [trial(n, rng) for n in range(1, 200, 3)]
    removed = [r.nct_id for r in rng.sample(base, 5)]
    kept = [r for r in base if r.nct_id not in removed]
    rewritten = [trial(int(r.nct_id[3:]), rng, brief_summary="new") for r in rng.sample(kept, 6)]
    added = [trial(n, rng, overall_status="SUSPENDED") for n in (2, 50, 500, 900)]
    expected = {r.nct_id: r for r in kept} | {r.nct_id: r for r in rewritten + added}
    return store_of(base, tmp_path), base, removed, rewritten + added, expected


@pytest.mark.parametrize("seed", range(4))
def test_merged_rows_are_the_updated_records_in_id_order(tmp_path, seed):
    store, base, removed, new, expected = an_update(tmp_path, seed)
    base_ids = np.asarray([r.nct_id for r in base])
    ids, source, old_to_new = merge_ids(base_ids, removed, new)
    records = UpdatedRecords(store, ids, source, new)
    want = [expected[i] for i in sorted(expected)]
    assert list(ids) == sorted(expected)
    assert list(records) == want and records[3] == want[3] and records[2:5] == want[2:5]
    assert list(records.lines()) == [encode_record(r) for r in want]
    for old, row in enumerate(old_to_new):
        if base[old].nct_id in removed:
            assert row == -1
        else:
            assert ids[row] == base[old].nct_id
    rewritten = {r.nct_id for r in new}
    for row, at in enumerate(records.base_rows):
        assert (at == -1) == (ids[row] in rewritten)
        assert at == -1 or base[at] == want[row]


@pytest.mark.parametrize("seed", range(4))
def test_updated_facets_equal_facets_coded_from_all_the_records(tmp_path, seed):
    _, base, removed, new, expected = an_update(tmp_path, seed)
    _, source, _ = merge_ids(np.asarray([r.nct_id for r in base]), removed, new)
    updated = Facets.updated(Facets.from_records(base), source, new)
    want = Facets.from_records(expected[i] for i in sorted(expected))
    assert updated.labels == want.labels
    for facet, column in want.codes.items():
        np.testing.assert_array_equal(updated.codes[facet], column)


def test_a_facet_value_no_kept_record_holds_is_dropped(tmp_path):
    base = [
        TrialRecord("NCT00000001", overall_status="WITHDRAWN", phases=("PHASE4",)),
        TrialRecord("NCT00000002", overall_status="COMPLETED", phases=("PHASE4",)),
    ]
    new = [TrialRecord("NCT00000001", overall_status="COMPLETED")]
    _, source, _ = merge_ids(np.asarray(["NCT00000001", "NCT00000002"]), [], new)
    updated = Facets.updated(Facets.from_records(base), source, new)
    assert updated.labels["status"] == ["", "COMPLETED"]
    assert updated.labels["phase"] == ["", "PHASE4"]
    assert updated.codes["phase"].tolist() == [0, 2]
