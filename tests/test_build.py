"""The build pipeline around the index: records spooled to disk, nothing left behind."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest

from recommender.core import RecordStore
from recommender.index import TrialIndex
from recommender.ingest import read_records
from recommender.pipelines import NoTermsError, build_index
from recommender.pipelines import build as build_module
from recommender.text import DEFAULT_FIELD_GROUPS
from tests.factories import TINY_STUDIES, write_studies

GROUPS = [replace(g, min_df=1, max_df=1.0) for g in DEFAULT_FIELD_GROUPS]


def test_records_are_spooled_to_disk_and_the_spool_is_removed(tmp_path, monkeypatch):
    source = write_studies(tmp_path / "studies")
    seen = {}
    real_fit_transform = build_module.FieldGroupVectorizer.fit_transform

    def fit_transform(self, records):
        seen["records"] = records
        return real_fit_transform(self, records)

    monkeypatch.setattr(build_module.FieldGroupVectorizer, "fit_transform", fit_transform)
    out = build_index([source], tmp_path / "index", groups=GROUPS, k=3, n_jobs=1).path
    # The vectoriser read the records from disk, not from a list held in memory.
    assert isinstance(seen["records"], RecordStore)
    expected, _ = read_records([source])
    assert list(TrialIndex.load(out).records) == expected
    assert sorted(p.name for p in tmp_path.iterdir()) == [".index.versions", "index", "studies"]


def test_a_failed_build_leaves_no_spool_behind(tmp_path):
    source = write_studies(tmp_path / "one", TINY_STUDIES[:1])
    with pytest.raises(NoTermsError):
        build_index([source], tmp_path / "index", k=2, n_jobs=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".index.versions", "one"]
    # Only the writers' lock files, taken before the read: no records, no version.
    assert sorted(os.listdir(tmp_path / ".index.versions")) == [".lock", ".writer"]


def test_records_on_disk_vectorise_as_records_in_memory(tmp_path):
    from recommender.core import TrialRecord
    from recommender.ingest import spool_records
    from recommender.text import FieldGroupVectorizer

    records = [
        TrialRecord(
            f"NCT0000000{i}",
            brief_title=f"Mesenchymal stem cells (MSC) in liver failure, study {i}",
            conditions=("Liver Failure",),
            interventions=(),
            keywords=("MSC",),
        )
        for i in range(4)
    ]
    store, _ = spool_records(records, tmp_path)
    from_disk = FieldGroupVectorizer(GROUPS, n_jobs=1)
    in_memory = FieldGroupVectorizer(GROUPS, n_jobs=1)
    X, Y = from_disk.fit_transform(store), in_memory.fit_transform(records)
    assert from_disk.abbreviations_.long_forms == {"MSC": "mesenchymal stem cells"}
    assert from_disk.abbreviations_.long_forms == in_memory.abbreviations_.long_forms
    assert (X != Y).nnz == 0 and from_disk.feature_names() == in_memory.feature_names()
