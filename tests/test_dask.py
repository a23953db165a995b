"""The same build on a Dask cluster (two worker processes) gives the same index."""

import json
from pathlib import Path

import numpy as np
import pytest

from recommender.pipelines import SchedulerError, build_index

distributed = pytest.importorskip("dask.distributed")
SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        yield cluster


@pytest.mark.parametrize("method", ["pruned", "exact"])
def test_dask_build_equals_local_build(cluster, tmp_path, method):
    sources = [SAMPLE / "ctg-studies-sample.json.zip", SAMPLE / "seed-cluster"]
    settings = {"k": 20, "neighbour_method": method}
    local = build_index(sources, tmp_path / "local", n_jobs=2, **settings).path
    remote = build_index(
        sources, tmp_path / "dask", scheduler=cluster.scheduler_address, **settings
    ).path
    for name in ("neighbours.indices.npy", "neighbours.scores.npy", "vectors.data.npy", "ids.npy"):
        np.testing.assert_array_equal(np.load(local / name), np.load(remote / name), err_msg=name)
    assert json.loads((local / "vocabulary.json").read_text()) == json.loads(
        (remote / "vocabulary.json").read_text()
    )


def test_unreachable_scheduler_fails_and_writes_nothing(tmp_path):
    import dask

    with (
        dask.config.set({"distributed.comm.timeouts.connect": "2s"}),
        pytest.raises(SchedulerError, match=r"no Dask scheduler answers at tcp://127\.0\.0\.1:9"),
    ):
        # A source that does not exist: the scheduler is checked before any is read.
        build_index([tmp_path / "missing.zip"], tmp_path / "x", k=2, scheduler="tcp://127.0.0.1:9")
    assert not (tmp_path / "x").exists()
