"""`recommender export`: every trial's related list as CSV or JSON lines."""

import csv
import io
import json

import numpy as np
import pytest

from recommender.cli import EXIT_BAD_INPUT, EXIT_OK, main
from recommender.index import TrialIndex
from recommender.pipelines import ExportError, export_related
from tests.factories import build_tiny_index


@pytest.fixture(scope="module")
def tiny_index(tmp_path_factory):
    return TrialIndex.load(build_tiny_index(tmp_path_factory.mktemp("tiny"), k=5))


def expected_rows(index, k):
    """What TrialIndex.similar says for every trial, as export rows."""
    return [
        (str(query), n.rank, n.nct_id, np.float32(n.score))
        for query in index.ids
        for n in index.similar(str(query), k)
    ]


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        rows = [(q, int(r), rel, np.float32(float(s))) for q, r, rel, s in reader]
    return header, rows


@pytest.mark.parametrize("block_rows", [1, 4, 4096])
def test_csv_equals_similar_for_every_trial(tiny_index, tmp_path, block_rows):
    out = tmp_path / "related.csv"
    summary = export_related(tiny_index, out, "csv", block_rows=block_rows)
    header, rows = read_csv(out)
    assert header == ["query_id", "rank", "related_id", "score"]
    assert rows == expected_rows(tiny_index, 5)
    assert (summary.trials, summary.rows, summary.k) == (len(tiny_index), len(rows), 5)


def test_jsonl_lines_parse_and_equal_similar(tiny_index, tmp_path):
    out = tmp_path / "related.jsonl"
    export_related(tiny_index, out, "jsonl", block_rows=2)
    lines = out.read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines]
    assert set(rows[0]) == {"query_id", "rank", "related_id", "score"}
    got = [(r["query_id"], r["rank"], r["related_id"], np.float32(r["score"])) for r in rows]
    assert got == expected_rows(tiny_index, 5)


def test_k_limits_the_rows_per_trial(tiny_index, tmp_path):
    out = tmp_path / "top2.csv"
    assert main(["export", "--index", str(tiny_index.path), "--out", str(out), "--k", "2"]) == 0
    _, rows = read_csv(out)
    assert rows == expected_rows(tiny_index, 2)
    assert max(rank for _, rank, _, _ in rows) == 2


def test_stdout_with_dash(tiny_index, capsys):
    args = ["export", "--index", str(tiny_index.path), "--out", "-", "--format", "jsonl"]
    assert main(args) == EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(expected_rows(tiny_index, 5))
    assert json.loads(lines[0])["query_id"] == str(tiny_index.ids[0])


def test_bad_format_is_exit_2_with_message(tiny_index, tmp_path, capsys):
    args = ["export", "--index", str(tiny_index.path), "--out", str(tmp_path / "x"), "--format"]
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "xml"])
    assert exit_info.value.code == EXIT_BAD_INPUT
    assert "invalid choice: 'xml'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    with pytest.raises(ExportError, match="unknown format"):
        export_related(tiny_index, tmp_path / "x", "xml")


def test_k_beyond_the_stored_lists_is_refused(tiny_index, tmp_path, capsys):
    args = ["export", "--index", str(tiny_index.path), "--out", str(tmp_path / "x"), "--k", "6"]
    assert main(args) == EXIT_BAD_INPUT
    assert "stores 5 related trials per trial" in capsys.readouterr().err


def test_missing_folder_is_exit_2(tiny_index, tmp_path, capsys):
    args = ["export", "--index", str(tiny_index.path), "--out", str(tmp_path / "no" / "x.csv")]
    assert main(args) == EXIT_BAD_INPUT
    assert "does not exist" in capsys.readouterr().err


def test_interrupted_export_leaves_the_old_file_and_no_temporary(tiny_index, tmp_path, monkeypatch):
    out = tmp_path / "related.csv"
    out.write_text("the previous export\n")

    def fail_midway(*args, **kwargs):
        yield "NCT00000001,1,NCT00000002,0.5\n", 1
        raise KeyboardInterrupt

    monkeypatch.setattr("recommender.pipelines.export.iter_blocks", fail_midway)
    with pytest.raises(KeyboardInterrupt):
        export_related(tiny_index, out, "csv")
    assert out.read_text() == "the previous export\n"
    assert [p.name for p in tmp_path.iterdir()] == ["related.csv"]


def test_rows_skip_missing_neighbours_and_rank_the_rest(tiny_index):
    """A trial with fewer related trials than k: NO_NEIGHBOUR slots are not rows."""
    from recommender.pipelines.export import iter_blocks

    text = "".join(t for t, _ in iter_blocks(tiny_index, "csv", 5))
    per_trial = {}
    for line in io.StringIO(text):
        query, rank, *_ = line.split(",")
        per_trial.setdefault(query, []).append(int(rank))
    stored = np.asarray(tiny_index.neighbour_indices)
    assert (stored == -1).any(), "the tiny index should have a trial with a short list"
    for pos, query in enumerate(tiny_index.ids):
        n = int((stored[pos] != -1).sum())
        assert per_trial.get(str(query), []) == list(range(1, n + 1))


def test_rows_read_from_the_file_equal_rows_of_arrays_in_memory(tiny_index):
    """The export reads a memory-mapped index with pread; any other array by slicing."""
    import copy

    from recommender.pipelines.export import iter_blocks

    assert isinstance(tiny_index.neighbour_indices, np.memmap)
    in_memory = copy.copy(tiny_index)
    in_memory.neighbour_indices = np.array(tiny_index.neighbour_indices)
    in_memory.neighbour_scores = np.array(tiny_index.neighbour_scores)
    for k in (1, 5):
        from_file = list(iter_blocks(tiny_index, "jsonl", k, block_rows=3))
        assert from_file == list(iter_blocks(in_memory, "jsonl", k, block_rows=3))
