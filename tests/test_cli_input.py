"""The command line's answers to missing or conflicting input (``recommender similar``)."""

from __future__ import annotations

import pytest

from recommender.cli import EXIT_BAD_INPUT, main
from tests.factories import build_tiny_index


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
