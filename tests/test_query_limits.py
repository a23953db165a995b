"""One set of limits and messages: the command line, the REST API and the Python API
refuse the same queries, in the same words (``recommender.core.queries``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import recommender
from api.app import create_app
from recommender.cli import EXIT_BAD_INPUT, main
from recommender.core import EMPTY_QUERY, MAX_RESULTS, MAX_TEXT_CHARS, NO_KNOWN_WORD
from tests.test_api import shared_tiny_index


@pytest.fixture(scope="module")
def tiny_index(tmp_path_factory) -> Path:
    return shared_tiny_index(tmp_path_factory)


@pytest.fixture(scope="module")
def client(tiny_index) -> TestClient:
    return TestClient(create_app(tiny_index, warm=False))


def cli_error(args: list[str], index: Path, capsys) -> str:
    """What ``recommender similar`` says on stderr when it refuses ``args`` (exit 2)."""
    try:
        code = main(["similar", *args, "--index", str(index)])
    except SystemExit as exc:  # argparse refuses a bad -k itself
        code = exc.code
    assert code == EXIT_BAD_INPUT
    return capsys.readouterr().err


def python_error(ask) -> str:
    with pytest.raises(ValueError) as caught:
        ask()
    return str(caught.value)


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_an_empty_text_asks_for_words_everywhere(text, tiny_index, client, capsys):
    assert client.post("/similar", json={"text": text}).json()["detail"] == EMPTY_QUERY
    assert EMPTY_QUERY in cli_error(["--text", text], tiny_index, capsys)
    trials = recommender.open_index(tiny_index)
    assert python_error(lambda: trials.similar_to_text(text)) == EMPTY_QUERY


def test_unknown_words_are_said_so_everywhere(tiny_index, client, capsys):
    text = "zebra oboe"
    assert client.post("/similar", json={"text": text}).json()["detail"] == NO_KNOWN_WORD
    assert NO_KNOWN_WORD in cli_error(["--text", text], tiny_index, capsys)
    trials = recommender.open_index(tiny_index)
    assert python_error(lambda: trials.similar_to_text(text)) == NO_KNOWN_WORD


@pytest.mark.parametrize("k", [0, MAX_RESULTS + 1, 1000])
def test_k_outside_1_to_100_is_refused_everywhere(k, tiny_index, client, capsys):
    assert client.get(f"/similar/NCT00000001?k={k}").status_code == 422
    assert client.post("/similar", json={"text": "asthma", "k": k}).status_code == 422
    said = f"the number of results must be 1 to {MAX_RESULTS}, got {k}"
    assert said in cli_error(["NCT00000001", "-k", str(k)], tiny_index, capsys)
    trials = recommender.open_index(tiny_index)
    assert python_error(lambda: trials.similar("NCT00000001", k=k)) == said


def test_k_of_100_is_answered_everywhere(tiny_index, client, capsys):
    assert client.get(f"/similar/NCT00000001?k={MAX_RESULTS}").status_code == 200
    assert main(["similar", "NCT00000001", "-k", "100", "--index", str(tiny_index)]) == 0
    assert recommender.open_index(tiny_index).similar("NCT00000001", k=MAX_RESULTS)


def test_a_text_over_the_limit_is_refused_everywhere(tiny_index, client, capsys):
    text = "asthma " * (MAX_TEXT_CHARS // 7 + 1)
    assert client.post("/similar", json={"text": text}).status_code == 422
    said = f"at most {MAX_TEXT_CHARS:,} are read"
    error = cli_error(["--text", text], tiny_index, capsys)
    assert said in error and len(error) < 300  # the text is not echoed back
    trials = recommender.open_index(tiny_index)
    assert said in python_error(lambda: trials.similar_to_text(text))
    fitting = text[:MAX_TEXT_CHARS]
    assert client.post("/similar", json={"text": fitting}).status_code == 200
    assert trials.similar_to_text(fitting).nct_ids


def test_the_api_schema_states_the_same_limits(client):
    schema = client.get("/openapi.json").json()
    query = schema["components"]["schemas"]["SimilarQuery"]["properties"]
    assert query["k"]["maximum"] == MAX_RESULTS and query["text"]["anyOf"][0]["maxLength"] == (
        MAX_TEXT_CHARS
    )
    (k,) = [
        p for p in schema["paths"]["/similar/{nct_id}"]["get"]["parameters"] if p["name"] == "k"
    ]
    assert k["schema"]["maximum"] == MAX_RESULTS


def test_the_command_line_header_shows_a_long_text_shortened(tiny_index, capsys):
    text = "asthma inhaler " * 100
    assert main(["similar", "--text", text, "--index", str(tiny_index)]) == 0
    header = capsys.readouterr().out.splitlines()[0]
    assert header.startswith("trials like your text: [asthma inhaler") and len(header) < 160
