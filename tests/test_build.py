"""The build pipeline around the index: records spooled to disk, nothing left behind."""

from __future__ import annotations

from dataclasses import replace

import pytest

from recommender import build as build_module
from recommender.build import NoTermsError, build_index
from recommender.index import TrialIndex
from recommender.ingest import read_records
from recommender.store import RecordStore
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
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index", "studies"]


def test_a_failed_build_leaves_no_spool_behind(tmp_path):
    source = write_studies(tmp_path / "one", TINY_STUDIES[:1])
    with pytest.raises(NoTermsError):
        build_index([source], tmp_path / "index", k=2, n_jobs=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one"]
