"""The command line on awkward input: a missing or doubled query, files that are not studies."""

from __future__ import annotations

import json

import pytest

from recommender.cli import EXIT_BAD_INPUT, EXIT_OK, main
from tests.factories import TINY_STUDIES, build_tiny_index, write_studies


@pytest.fixture(scope="module")
def tiny_index_path(tmp_path_factory):
    return build_tiny_index(tmp_path_factory.mktemp("tiny"))


def test_similar_without_a_query_says_none_was_given(tiny_index_path, capsys):
    assert main(["similar", "--index", str(tiny_index_path)]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "neither was given" in err
    assert "not both" not in err


def test_similar_with_both_queries_says_not_both(tiny_index_path, capsys):
    args = ["similar", "NCT00000001", "--text", "asthma", "--index", str(tiny_index_path)]
    assert main(args) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "not both" in err
    assert "neither" not in err


def test_a_label_file_beside_the_studies_is_ignored_not_skipped(tmp_path, capsys):
    source = write_studies(tmp_path / "seed-cluster")
    (source / "expected_related.json").write_text(json.dumps({"NCT00000001": ["NCT00000002"]}))
    out = tmp_path / "ix"
    args = ["build", "--source", str(source), "--out", str(out), "-k", "2", "--quiet"]
    assert main(args) == EXIT_OK
    printed = capsys.readouterr().out
    assert "skipped: 0" in printed and "9 studies read, 0 skipped, 1 ignored" in printed
    assert "ignored, not studies: 1 (expected_related.json)" in printed
    report = json.loads((out / "build_report.json").read_text())
    assert report["skipped"] == []
    assert [item["item"] for item in report["ignored"]] == ["expected_related.json"]
    assert json.loads((out / "meta.json").read_text())["ingest"]["ignored"] == 1


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("--header-timeout", "0", "must be more than 0 seconds"),
        ("--body-timeout", "soon", "is not a number of seconds"),
        ("--max-connections", "0", "must be at least 1"),
    ],
)
def test_serve_refuses_bad_limits(tmp_path, capsys, option, value, message):
    with pytest.raises(SystemExit) as exc:
        main(["serve", "--index", str(tmp_path), option, value])
    assert exc.value.code == EXIT_BAD_INPUT
    assert message in capsys.readouterr().err


def test_a_one_study_source_says_too_few_studies_and_exits_2(tmp_path, capsys):
    # min_df=2 keeps no term of a lone study: the build used to end in a scikit-learn
    # traceback (or, later, an index of zero features).
    source = write_studies(tmp_path / "one", TINY_STUDIES[:1])
    out = tmp_path / "ix"
    args = ["build", "--source", str(source), "--out", str(out), "-k", "2", "--quiet"]
    assert main(args) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "too few studies to index: 1 read" in err and "min_df=2" in err
    assert "Traceback" not in err
    assert not out.exists()
