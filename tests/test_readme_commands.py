"""The README's commands work as written.

Every ``recommender ...`` line of the README's ``sh`` blocks is checked: a synopsis
line (``[--option VALUE]``) is parsed by the real argument parser with its
placeholders filled in, so a documented subcommand, option or value format the CLI
does not accept fails here (argparse's exit 2); a plain example line is run, from a
folder laid out like the repository (``data/sample/``, ``models/index``) with a tiny
corpus, as a user would run it after ``make serve``. ``make`` lines must name targets
of the Makefile.
"""

from __future__ import annotations

import io
import json
import re
import shlex
import shutil
import zipfile
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from recommender.cli import EXIT_OK, main, make_parser
from tests.factories import TINY_STUDIES, study_json

REPO = Path(__file__).resolve().parents[1]
DOCUMENTS = [REPO / "README.md", REPO / "docs" / "export.md"]
# Values for the synopsis placeholders; a new placeholder must be added here.
PLACEHOLDERS = {
    "PATH": "data/ctgov/new",
    "N": "2",
    "ADDRESS": "tcp://127.0.0.1:8786",
    "TEXT": "liver failure",
    "FILE": "related.csv",
    "ORIGIN": "https://registry.example",
}
# Need a server or the network: parsed, not run.
NOT_RUN = {"serve", "fetch"}


def sh_lines(path: Path) -> list[str]:
    """The commands of a Markdown file's ``sh`` blocks, continuation lines joined."""
    lines: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", path.read_text(encoding="utf-8"), re.S):
        for line in block.splitlines():
            if line[:1].isspace() and lines and line.strip():
                lines[-1] += " " + line.strip()
            elif line.strip():
                lines.append(line.strip())
    return lines


def commands(prefix: str) -> list[str]:
    return [
        line
        for doc in DOCUMENTS
        if doc.exists()
        for line in sh_lines(doc)
        if line.startswith(prefix)
    ]


def argv(line: str) -> list[str]:
    return shlex.split(line, comments=True)[1:]


def is_synopsis(line: str) -> bool:
    return any(token.startswith("[") or "|" in token for token in argv(line))


def synopsis_argv(line: str) -> list[str]:
    """A concrete command line for a synopsis: brackets dropped, first alternative,
    placeholders filled in."""
    out = []
    for token in argv(line):
        token = token.strip("[]").split("|")[0]
        if token in ("", "..."):
            continue
        if re.fullmatch(r"[A-Z_]+", token):
            assert token in PLACEHOLDERS, f"{token} in {line!r}: add it to PLACEHOLDERS"
            token = PLACEHOLDERS[token]
        out.append(token)
    return out


def option_strings(subcommand: str) -> set[str]:
    parser = make_parser()
    choices = parser._subparsers._group_actions[0].choices  # the subcommands
    return {s for action in choices[subcommand]._actions for s in action.option_strings}


SYNOPSES = [line for line in commands("recommender ") if is_synopsis(line)]
EXAMPLES = [line for line in commands("recommender ") if not is_synopsis(line)]


def test_the_readme_documents_commands():
    assert len(SYNOPSES) >= 6 and len(EXAMPLES) >= 3
    assert any(line.startswith("recommender export") for line in SYNOPSES)
    assert "--if-changed" in " ".join(SYNOPSES)


@pytest.mark.parametrize("line", SYNOPSES, ids=lambda line: " ".join(line.split()[:2]))
def test_every_documented_option_parses(line, capsys):
    args = synopsis_argv(line)
    subcommand = args[0]
    with pytest.raises(SystemExit) as help_exit:
        make_parser().parse_args([subcommand, "--help"])
    assert help_exit.value.code == 0
    documented = {t for t in args if t.startswith("-")}
    assert documented <= option_strings(subcommand), f"not in `{subcommand} --help`"
    make_parser().parse_args(args)  # exit 2 (SystemExit) when a value is refused


@pytest.fixture(scope="module")
def repo_like(tmp_path_factory):
    """A folder laid out like the repository: the sample sources (a tiny zip and the
    real seed cluster) and ``models/index`` built from them as ``make serve`` does."""
    root = tmp_path_factory.mktemp("repo")
    sample = root / "data" / "sample"
    sample.mkdir(parents=True)
    liver = study_json(
        "NCT00000010",
        "Stem cells for liver failure",
        summary="Mesenchymal stem cells for acute-on-chronic liver failure.",
        conditions=("Acute-On-Chronic Liver Failure",),
    )
    with zipfile.ZipFile(sample / "ctg-studies-sample.json.zip", "w") as archive:
        for study in [*TINY_STUDIES, liver]:
            nct_id = study["protocolSection"]["identificationModule"]["nctId"]
            archive.writestr(f"{nct_id}.json", json.dumps(study))
    shutil.copytree(REPO / "data" / "sample" / "seed-cluster", sample / "seed-cluster")
    sources = ["data/sample/ctg-studies-sample.json.zip", "data/sample/seed-cluster"]
    build = ["build", "--if-changed", "--quiet", "--jobs", "1", "-k", "5"]
    with pytest.MonkeyPatch.context() as patch, redirect_stdout(io.StringIO()):
        patch.chdir(root)
        assert main([*build, *(f"--source={s}" for s in sources)]) == EXIT_OK
    return root


@pytest.mark.parametrize("line", EXAMPLES)
def test_every_example_runs_as_written(line, repo_like, monkeypatch, capsys):
    args = argv(line)
    if args[0] in NOT_RUN:
        pytest.skip(f"`recommender {args[0]}` needs a server or the network")
    monkeypatch.chdir(repo_like)
    assert main(args) == EXIT_OK, capsys.readouterr().err
    assert capsys.readouterr().out or (repo_like / "related.csv").exists()


def python_blocks(path: Path) -> list[str]:
    """The code of a Markdown file's ``python`` blocks, in order."""
    return re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), re.S)


PYTHON_EXAMPLES = python_blocks(REPO / "README.md")


def run_python_examples(blocks: list[str], folder: Path, monkeypatch) -> None:
    """Run ``blocks`` one after another in one namespace, from ``folder``, as a
    notebook's cells would run."""
    monkeypatch.chdir(folder)
    namespace: dict = {"__name__": "__readme__"}
    with redirect_stdout(io.StringIO()):
        for block in blocks:
            exec(compile(block, "README.md", "exec"), namespace)


def test_the_readme_shows_python_first(repo_like):
    headings = re.findall(r"^## (.+)$", (REPO / "README.md").read_text(), re.M)
    assert headings[0] == "From Python"
    assert len(PYTHON_EXAMPLES) >= 2 and "import recommender" in PYTHON_EXAMPLES[0]


def test_the_readme_python_examples_run(repo_like, monkeypatch):
    without_pandas = [block for block in PYTHON_EXAMPLES if "to_pandas" not in block]
    run_python_examples(without_pandas, repo_like, monkeypatch)


def test_the_readme_pandas_example_runs(repo_like, monkeypatch):
    pytest.importorskip("pandas")
    run_python_examples(PYTHON_EXAMPLES, repo_like, monkeypatch)


@pytest.mark.parametrize("line", commands("make "))
def test_make_lines_name_makefile_targets(line):
    targets = set(re.findall(r"^([\w-]+):", (REPO / "Makefile").read_text(), re.M))
    for target in argv(line):
        if "=" not in target and not target.startswith("-"):
            assert target in targets, f"{line!r}: no target {target} in the Makefile"


def test_activation_is_documented_before_the_examples():
    lines = sh_lines(REPO / "README.md")
    first_example = lines.index(EXAMPLES[0])
    assert ". .venv/bin/activate" in lines[:first_example]
