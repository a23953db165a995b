import itertools
import json
import os
import shutil

import numpy as np
import pytest

from recommender.core import InvalidNctIdError
from recommender.index import META_FILE, DamagedIndexError, NotInIndexError, TrialIndex
from recommender.pipelines import build_index
from tests.factories import build_tiny_index, write_studies


@pytest.fixture(scope="module")
def tiny_index_path(tmp_path_factory):
    return build_tiny_index(tmp_path_factory.mktemp("tiny"))


@pytest.fixture
def index_copy(tiny_index_path, tmp_path):
    return shutil.copytree(tiny_index_path, tmp_path / "index")


def test_round_trip_keeps_records_vectors_and_neighbours(tiny_index_path):
    index = TrialIndex.load(tiny_index_path)
    assert len(index) == 9
    assert index.record("NCT00000004").conditions == ("Asthma",)
    assert index.meta["counts"]["k"] == 5
    # What was saved is what a fresh vectoriser gives for the stored records.
    again = index.vectorize(index.record("NCT00000007"))
    np.testing.assert_allclose(again.toarray(), index.vectors[6].toarray(), rtol=1e-6)


def test_similar_lists_the_topical_cluster_and_never_the_query(tiny_index_path):
    index = TrialIndex.load(tiny_index_path)
    for nct_id in index.ids:
        results = index.similar(str(nct_id), k=5)
        assert nct_id not in [r.nct_id for r in results]
        assert [r.rank for r in results] == list(range(1, len(results) + 1))
        assert all(a.score >= b.score for a, b in itertools.pairwise(results))
    assert {r.nct_id for r in index.similar("NCT00000001", k=2)} == {"NCT00000002", "NCT00000003"}
    assert [r.nct_id for r in index.similar("NCT00000007", k=1)] == ["NCT00000008"]
    assert index.similar("NCT00000009", k=5) == []  # shares no term with anything


def test_filters_apply_before_ranking(tiny_index_path):
    index = TrialIndex.load(tiny_index_path)
    recruiting = index.facets.allowed({"status": ["RECRUITING"]})
    results = index.similar("NCT00000004", k=5, allowed=recruiting)
    assert [r.nct_id for r in results] == ["NCT00000005"]
    phase3 = index.facets.allowed({"phase": ["PHASE3"], "study_type": ["INTERVENTIONAL"]})
    ids = [r.nct_id for r in index.similar("NCT00000006", k=5, allowed=phase3)]
    assert ids[:2] == ["NCT00000004", "NCT00000005"]


def test_explain_splits_the_score_by_field(tiny_index_path):
    index = TrialIndex.load(tiny_index_path)
    pos = index.position("NCT00000007")
    best = index.similar("NCT00000007", k=1)[0]
    why = index.explain(index.vectors[pos], best.position)
    assert sum(part["score"] for part in why) == pytest.approx(best.score, rel=1e-5)
    fields = {part["field"]: part["terms"] for part in why}
    assert "tamoxifen" in fields["interventions"]
    assert "breast cancer" in fields["conditions"]


def test_unknown_and_malformed_ids(tiny_index_path):
    index = TrialIndex.load(tiny_index_path)
    with pytest.raises(NotInIndexError, match=r"NCT12345678 is not in this index \(built from 9"):
        index.similar("NCT12345678")
    with pytest.raises(InvalidNctIdError, match="not an NCT id"):
        index.similar("NCT123")
    assert "nct00000001" in index and "NCT1" not in index


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda p: (p / "neighbours.scores.npy").write_bytes(b"x"), "neighbours.scores.npy has"),
        (lambda p: (p / "ids.npy").unlink(), "ids.npy is missing"),
        (lambda p: (p / META_FILE).unlink(), "meta.json is missing"),
        (lambda p: (p / META_FILE).write_text("{not json"), "unreadable"),
    ],
)
def test_damaged_index_is_refused_with_the_reason(index_copy, damage, message):
    damage(index_copy)
    with pytest.raises(DamagedIndexError, match=message):
        TrialIndex.load(index_copy)


def test_flipped_byte_is_caught_by_the_hash(index_copy):
    path = index_copy / "vectors.data.npy"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(DamagedIndexError, match=r"vectors\.data\.npy does not match its recorded"):
        TrialIndex.load(index_copy)


def test_wrong_format_version_is_refused(index_copy):
    meta = json.loads((index_copy / META_FILE).read_text())
    meta["format_version"] = 99
    (index_copy / META_FILE).write_text(json.dumps(meta))
    with pytest.raises(DamagedIndexError, match=r"version 99.*rebuild"):
        TrialIndex.load(index_copy)


def test_no_pickle_in_the_format(tiny_index_path):
    for path in tiny_index_path.glob("*.npy"):
        np.load(path, allow_pickle=False)  # raises on object arrays


def test_interrupted_build_leaves_the_old_index(tiny_index_path, tmp_path, monkeypatch):
    out = shutil.copytree(tiny_index_path, tmp_path / "index")
    before = (out / META_FILE).read_bytes()
    source = write_studies(tmp_path / "more")

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("recommender.index.writer._HashingFile.write", crash)  # mid-save
    with pytest.raises(KeyboardInterrupt):
        build_index([source], out, k=2, n_jobs=1)
    assert (out / META_FILE).read_bytes() == before
    TrialIndex.load(out)
    assert sorted(os.listdir(tmp_path)) == [".index.versions", "index", "more"]
    left = sorted(os.listdir(tmp_path / ".index.versions"))
    assert left == [".lock", ".writer"], "temp left over"  # the writers' lock files


def test_rebuild_replaces_the_index_atomically(tiny_index_path, tmp_path):
    out = shutil.copytree(tiny_index_path, tmp_path / "index")
    source = write_studies(tmp_path / "more")
    build_index([source], out, k=3, n_jobs=1)
    assert TrialIndex.load(out).meta["counts"]["k"] == 3
    assert sorted(os.listdir(tmp_path)) == [".index.versions", "index", "more"]


def test_refuses_to_overwrite_a_folder_that_is_not_an_index(tmp_path):
    out = tmp_path / "precious"
    out.mkdir()
    (out / "thesis.txt").write_text("do not delete")
    with pytest.raises(FileExistsError, match="not an index"):
        build_index([write_studies(tmp_path / "s")], out, k=2, n_jobs=1)
    assert (out / "thesis.txt").exists()


def test_an_out_that_is_not_an_index_is_refused_before_reading(tmp_path, monkeypatch):
    out = tmp_path / "precious"
    out.mkdir()
    (out / "thesis.txt").write_text("do not delete")

    def no_reading(*args, **kwargs):
        raise AssertionError("read before checking --out")

    monkeypatch.setattr("recommender.pipelines.build.iter_records", no_reading)
    with pytest.raises(FileExistsError, match="not an index"):
        build_index([tmp_path], out, k=2, n_jobs=1)


def test_a_read_only_lines_file_is_linked_and_a_writable_one_copied(tiny_index_path, tmp_path):
    from recommender.core import RecordStore, write_records
    from recommender.index import save_index

    index = TrialIndex.load(tiny_index_path)
    writable = tmp_path / "writable"
    writable.mkdir()
    write_records(list(index.records), writable / "records.jsonl", writable / "offsets.npy")
    parts = {
        "vectorizer": index.vectorizer,
        "vectors": index.vectors,
        "neighbour_indices": index.neighbour_indices,
        "neighbour_scores": index.neighbour_scores,
        "meta": {},
    }
    for source, name in ((index.records, "linked"), (None, "copied")):
        records = source or RecordStore(writable / "records.jsonl", writable / "offsets.npy")
        saved = save_index(tmp_path / name, records=records, **parts)
        lines = (saved / "records.jsonl").resolve()
        shared = os.path.samefile(lines, records.lines_path)
        assert shared == (name == "linked")
        # Loading checks every file's size and hash against the metadata.
        assert list(TrialIndex.load(saved).records) == list(index.records)
