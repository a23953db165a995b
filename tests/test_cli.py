import json

import pytest

from recommender.cli import EXIT_BAD_INPUT, EXIT_OK, main
from tests.factories import build_tiny_index, write_studies


@pytest.fixture(scope="module")
def tiny_index_path(tmp_path_factory):
    return build_tiny_index(tmp_path_factory.mktemp("tiny"))


def test_build_prints_a_summary(tmp_path, capsys):
    source = write_studies(tmp_path / "studies")
    (source / "broken.json").write_text("{not json")
    code = main(["build", "--source", str(source), "--out", str(tmp_path / "ix"), "-k", "3",
                 "--quiet", "--jobs", "1"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == EXIT_OK
    assert "studies indexed: 9" in out
    assert "skipped: 1" in out and "broken.json" in out
    assert "vocabulary: conditions" in out and "seconds: read" in out
    assert (tmp_path / "ix" / "meta.json").exists()


def test_later_source_wins_and_is_counted(tmp_path, capsys):
    first = write_studies(tmp_path / "a")
    second = write_studies(tmp_path / "b")
    code = main(["build", "--source", str(first), "--source", str(second), "--out",
                 str(tmp_path / "ix"), "--quiet", "-k", "2"])  # fmt: skip
    assert code == EXIT_OK
    assert "duplicates replaced by a later source: 9" in capsys.readouterr().out


def test_similar_prints_rank_id_score_title(tiny_index_path, capsys):
    assert main(["similar", "NCT00000007", "--index", str(tiny_index_path), "-k", "1"]) == EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("trials like NCT00000007: Tamoxifen after surgery")
    rank, nct_id, score, *title = lines[1].split()
    assert (rank, nct_id) == ("1", "NCT00000008") and 0 < float(score) <= 1
    assert " ".join(title) == "Letrozole versus tamoxifen in breast cancer"


def test_similar_json_and_why(tiny_index_path, capsys):
    args = ["similar", "NCT00000004", "--index", str(tiny_index_path), "--json", "--why"]
    assert main(args) == EXIT_OK
    data = json.loads(capsys.readouterr().out)
    assert [r["nct_id"] for r in data["results"]] == ["NCT00000005", "NCT00000006"]
    top_field = data["results"][0]["why"][0]["field"]
    assert top_field in {"conditions", "interventions", "titles", "text"}


def test_similar_free_text(tiny_index_path, capsys):
    args = ["similar", "--text", "tamoxifen for breast cancer", "--index", str(tiny_index_path),
            "-k", "2", "--json"]  # fmt: skip
    assert main(args) == EXIT_OK
    ids = [r["nct_id"] for r in json.loads(capsys.readouterr().out)["results"]]
    assert set(ids) == {"NCT00000007", "NCT00000008"}


@pytest.mark.parametrize(
    "args, message",
    [
        (["similar", "NCT123"], "is not an NCT id"),
        (["similar", "NCT99999999"], "is not in this index"),
        (["similar", "--text", "qwertyuiop"], "none of the words"),
        (["similar"], "either an NCT id or --text"),
    ],
)
def test_bad_input_exits_2_with_a_message(tiny_index_path, capsys, args, message):
    assert main([*args, "--index", str(tiny_index_path)]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_missing_index_and_source_exit_2(tmp_path, capsys):
    assert main(["similar", "NCT00000001", "--index", str(tmp_path / "none")]) == EXIT_BAD_INPUT
    assert "no index at" in capsys.readouterr().err
    code = main(["build", "--source", str(tmp_path / "nothing.zip"), "--out", str(tmp_path / "i")])
    assert code == EXIT_BAD_INPUT
    assert "nothing.zip" in capsys.readouterr().err


def test_usage_errors_exit_2():
    with pytest.raises(SystemExit) as exc:
        main(["similar", "NCT00000001", "-k", "0"])
    assert exc.value.code == 2


def test_build_refuses_a_folder_that_is_not_an_index_and_exits_2(tmp_path, capsys):
    out = tmp_path / "thesis"
    out.mkdir()
    (out / "chapter1.txt").write_text("keep me")
    source = write_studies(tmp_path / "studies")
    assert main(["build", "--source", str(source), "--out", str(out), "--quiet"]) == EXIT_BAD_INPUT
    assert "not an index" in capsys.readouterr().err
    assert (out / "chapter1.txt").read_text() == "keep me"


def test_build_from_sources_without_a_single_study_exits_2(tmp_path, capsys):
    folder = tmp_path / "junk"
    folder.mkdir()
    (folder / "a.json").write_text("{not json")
    assert main(["build", "--source", str(folder), "--out", str(tmp_path / "ix"), "--quiet"]) == 2
    assert "no readable study" in capsys.readouterr().err


def test_every_command_and_option_says_what_it_does():
    import argparse

    from recommender.cli import make_parser

    parser = make_parser()
    commands = parser._subparsers._group_actions[0]
    silent = [f"recommender {a.dest}" for a in commands._choices_actions if not a.help]
    for name, command in commands.choices.items():
        for action in command._actions:
            if not action.help or action.help == argparse.SUPPRESS:
                silent.append(
                    f"recommender {name} {'/'.join(action.option_strings) or action.dest}"
                )
    assert silent == []


def test_version(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out == f"recommender {version('trial-recommender')}\n"
