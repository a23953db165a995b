"""The commands of the README and ``docs/`` work as written, and the README lists them all.

Every line of the ``sh`` blocks of ``README.md`` and ``docs/*.md``, and every inline
``python -m bench...`` and ``recommender ...`` of their prose, is checked by its kind:

* ``recommender``: a synopsis line (``[--option VALUE]``) is parsed by the real
  argument parser with its placeholders filled in; an example line is run, from a
  folder laid out like the repository (``data/sample/``, ``models/index``) beside a
  ``../shared`` laid out like the project's (``data/``, ``labels/``), all with a tiny
  corpus, as a user would run it after ``make serve``. ``serve`` and ``fetch`` need a
  server or the network: parsed. A line with environment variables runs in a child
  process (the fault-injection example is killed there on purpose). Inline, the
  command and its options must exist.
* ``python -m bench.X``: parsed by the benchmark's own parser (``make_parser``); those
  whose work a tiny corpus bounds (:data:`RUN_BENCHES`) are run, in a child process.
* ``python scripts/X.py``: the script exists and its ``--help`` works.
* ``curl``: sent, in process, to the app serving the tiny index; any answer but an
  error status passes.
* ``uvicorn``: its options parse and its app factory imports.
* ``make``: names targets of the Makefile.
* shell built-ins and file commands (``cp``, ``ln``, ``mv``, ``.``) are left alone; a
  line of any other kind fails here until this module knows it.

The README's "Every command and option" block must list every command and every
option the parser has (and the parser every one it lists).
"""

from __future__ import annotations

import importlib
import io
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import zipfile
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from recommender.cli import EXIT_OK, main, make_parser
from tests.factories import TINY_STUDIES, study_json, write_studies

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DOCUMENTS = [README, *sorted((REPO / "docs").glob("*.md"))]
# Values for the placeholders of synopses and examples; a new one must be added here.
PLACEHOLDERS = {
    "PATH": "data/ctgov/new",
    "N": "2",
    "ADDRESS": "tcp://127.0.0.1:8786",
    "TEXT": "liver failure",
    "FILE": "related.csv",
    "ORIGIN": "https://registry.example",
    "DIR": "models/updated",
    "YYYY-MM-DD": "2025-01-15",
    "FOLDER": "../shared/labels/trec-ct-2021",
    "PATH_TO_REGISTRY_DOWNLOAD": "data/sample",
    "IDX": "models/index",
    "<600k index>": "models/index",
    "<registry index>": "models/index",
}
# Need a server or the network: parsed, not run.
NOT_RUN = {"serve", "fetch"}
# Benchmarks run on the tiny corpus as written; the others are parsed only, since
# their lines set a workload no test can carry (600,000 studies, a Dask cluster,
# servers measured with thousands of requests, Debian's wrk) or a placeholder value.
RUN_BENCHES = {"save", "update", "query", "follow"}
# Left alone: the shell's own commands and file operations.
SHELL = {".", "cp", "ln", "mv", "for", "do", "done", "cd"}
INLINE = re.compile(r"`((?:recommender(?=[ `])|python -m bench\.)[^`]*)`")


# -- reading the documents ----------------------------------------------------------------


def sh_lines(path: Path) -> list[str]:
    """The commands of a Markdown file's ``sh`` blocks, continuation lines joined,
    comment lines dropped."""
    lines: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", path.read_text(encoding="utf-8"), re.S):
        for line in block.splitlines():
            if line.strip().startswith("#") or not line.strip():
                continue
            if line[:1].isspace() and lines and not lines[-1].endswith("\\"):
                lines[-1] += " " + line.strip()
            elif lines and lines[-1].endswith("\\"):
                lines[-1] = lines[-1][:-1].rstrip() + " " + line.strip()
            else:
                lines.append(line.strip())
    return lines


def inline_commands(path: Path) -> list[str]:
    """Inline ``recommender ...`` and ``python -m bench...`` of a file's prose."""
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    return [" ".join(match.split()) for match in INLINE.findall(text)]


def where(doc: Path, line: str) -> str:
    return f"{doc.relative_to(REPO)}: {line}"


ALL_LINES = [(doc, line) for doc in DOCUMENTS for line in sh_lines(doc)]


def split_env(line: str) -> tuple[dict[str, str], list[str]]:
    """Leading ``NAME=value`` assignments and the command's words (up to a pipe);
    ``<...>`` placeholders are filled in first (they hold spaces)."""
    for name, value in PLACEHOLDERS.items():
        if name.startswith("<"):
            line = line.replace(name, value)
    words = shlex.split(line, comments=True)
    if "|" in words:
        words = words[: words.index("|")]
    env = {}
    while words and re.fullmatch(r"[A-Z_]+=.*", words[0]):
        name, value = words.pop(0).split("=", 1)
        env[name] = value
    return env, words


def kind(line: str) -> str:
    _, words = split_env(line)
    if not words:
        return "shell"
    if line.startswith("("):
        return "shell"  # a subshell in another checkout (docs/benchmarks.md)
    first = words[0]
    if first == "python" and len(words) > 2 and words[1] == "-m" and words[2].startswith("bench."):
        return "bench"
    if first == "python" and len(words) > 1 and words[1].startswith("scripts/"):
        return "script"
    if first in ("recommender", "make", "curl", "uvicorn"):
        return first
    return "shell" if first in SHELL else "unknown"


def of_kind(wanted: str) -> list[tuple[Path, str]]:
    return [(doc, line) for doc, line in ALL_LINES if kind(line) == wanted]


def fill(token: str) -> str:
    """A synopsis word as a value: brackets dropped, first alternative, placeholders."""
    token = token.strip("[]")
    if token != "-" and "|" in token and " " not in token:
        token = token.split("|")[0]
    return PLACEHOLDERS.get(token, token)


def concrete(words: list[str]) -> list[str]:
    """A documented command line (its words) made concrete: brackets and "..."
    dropped, the first of alternatives taken, placeholders filled in."""
    out = []
    for word in words:
        token = fill(word)
        if token in ("", "..."):
            continue
        if re.fullmatch(r"[A-Z_]+", token):
            raise AssertionError(f"{token} in {' '.join(words)!r}: add it to PLACEHOLDERS")
        out.append(token)
    return out


def is_synopsis(words: list[str]) -> bool:
    return any(w.startswith("[") or ("|" in w and not w.startswith("-")) for w in words)


def recommender_lines() -> tuple[list, list]:
    synopses, examples = [], []
    for doc, line in of_kind("recommender"):
        _, words = split_env(line)
        (synopses if is_synopsis(words) else examples).append((doc, line))
    return synopses, examples


SYNOPSES, EXAMPLES = recommender_lines()


def subcommand_parsers() -> dict:
    return make_parser()._subparsers._group_actions[0].choices


def option_strings(subcommand: str) -> set[str]:
    parser = subcommand_parsers()[subcommand]
    return {s for action in parser._actions for s in action.option_strings} - {"-h", "--help"}


# -- the README lists every command and option ---------------------------------------------


def readme_synopses() -> dict[str, set[str]]:
    """The options the README's command block lists, by command (``""``: none)."""
    listed: dict[str, set[str]] = {}
    for line in sh_lines(README):
        _, words = split_env(line)
        if not words or words[0] != "recommender":
            continue
        command = words[1] if len(words) > 1 and not words[1].startswith("-") else ""
        options = {w.strip("[]").split("=")[0] for w in words[1:] if w.strip("[").startswith("-")}
        listed.setdefault(command, set()).update(options - {"-"})
    return listed


def unlisted(listed: dict[str, set[str]]) -> list[str]:
    """Commands and options of the parser that ``listed`` lacks, one string each."""
    missing = []
    top = {s for a in make_parser()._actions for s in a.option_strings} - {"-h", "--help"}
    missing += [f"recommender {o}" for o in sorted(top - listed.get("", set()))]
    for command in subcommand_parsers():
        if command not in listed:
            missing.append(f"recommender {command}")
            continue
        missing += [
            f"recommender {command} {o}" for o in sorted(option_strings(command) - listed[command])
        ]
    return missing


def test_the_readme_lists_every_command_and_option():
    assert unlisted(readme_synopses()) == []


def test_a_command_or_option_missing_from_the_readme_is_found():
    listed = readme_synopses()
    listed["update"] = listed["update"] - {"--max-unseen"}
    del listed["labels"]
    assert unlisted(listed) == ["recommender labels", "recommender update --max-unseen"]


def test_the_readme_lists_only_what_the_parser_has():
    for command, options in readme_synopses().items():
        if command:
            assert options <= option_strings(command), f"not in `recommender {command} --help`"


def test_every_documented_line_is_of_a_known_kind():
    assert [where(doc, line) for doc, line in ALL_LINES if kind(line) == "unknown"] == []
    assert len(SYNOPSES) >= 8 and len(EXAMPLES) >= 10
    assert kind("python -m bench.save") == "bench" and kind("rm -rf /") == "unknown"


# -- recommender: synopses parse, examples run -----------------------------------------------


@pytest.mark.parametrize(("doc", "line"), SYNOPSES, ids=lambda v: str(v)[:60])
def test_every_documented_synopsis_parses(doc, line):
    _, words = split_env(line)
    args = concrete(words[1:])
    subcommand = args[0]
    documented = {t.split("=")[0] for t in args if t.startswith("-") and t != "-"}
    assert documented <= option_strings(subcommand), where(doc, line)
    make_parser().parse_args(args)  # exit 2 (SystemExit) when a value is refused


@pytest.mark.parametrize(
    ("doc", "line"), [(d, c) for d in DOCUMENTS for c in inline_commands(d)], ids=str
)
def test_inline_commands_name_commands_and_options_that_exist(doc, line):
    words = line.split()
    if words[0] == "recommender":
        if len(words) == 1 or words[1].startswith("-") or words[1].isupper():
            return  # the command alone, or `recommender COMMAND --help`
        assert words[1] in subcommand_parsers(), where(doc, line)
        used = {w.split("=")[0] for w in words[2:] if w.startswith("-") and w != "-"}
        assert used <= option_strings(words[1]), where(doc, line)
    else:
        words = split_env(line)[1]
        bench_parser(words[2]).parse_args(concrete(words[3:]))


def tiny_xml(nct_id: str, condition: str, intervention: str) -> str:
    return (
        f"<clinical_study><id_info><nct_id>{nct_id}</nct_id></id_info>"
        f"<brief_title>{intervention} for {condition}</brief_title>"
        f"<condition>{condition}</condition>"
        f"<intervention><intervention_type>Drug</intervention_type>"
        f"<intervention_name>{intervention}</intervention_name></intervention>"
        f"<condition_browse><mesh_term>{condition}</mesh_term></condition_browse>"
        f"<intervention_browse><mesh_term>{intervention}</mesh_term></intervention_browse>"
        "</clinical_study>"
    )


@pytest.fixture(scope="module")
def repo_like(tmp_path_factory):
    """A folder laid out like the repository, beside a ``shared`` one like the project's,
    with ``models/index`` built from the sample sources as ``make serve`` builds it.

    The corpus: the tiny studies, a liver-failure study, and the real seed cluster;
    ``data/ctgov/`` holds what ``recommender fetch`` would have written.
    """
    root = tmp_path_factory.mktemp("checkouts")
    repo, shared = root / "repo", root / "shared"
    liver = study_json(
        "NCT00000010",
        "Stem cells for liver failure",
        summary="Mesenchymal stem cells for acute-on-chronic liver failure.",
        conditions=("Acute-On-Chronic Liver Failure",),
    )
    studies = [*TINY_STUDIES, liver]
    for zip_path in (
        repo / "data" / "sample" / "ctg-studies-sample.json.zip",
        shared / "data" / "ctg-studies.json.zip",
    ):
        zip_path.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(zip_path, "w") as archive:
            for study in studies:
                nct_id = study["protocolSection"]["identificationModule"]["nctId"]
                archive.writestr(f"{nct_id}.json", json.dumps(study))
    seed = REPO / "data" / "sample" / "seed-cluster"
    for folder in (repo / "data" / "sample" / "seed-cluster", shared / "data" / "seed-cluster"):
        shutil.copytree(seed, folder)
    ctgov = repo / "data" / "ctgov"
    write_studies(ctgov / "new", [studies[0]])
    write_studies(ctgov / "since-2025-01-16", studies[3:5])
    for full in ("full-2025-01-15", "full-2025-02-01"):
        write_studies(ctgov / full, studies)
        for study in seed.glob("NCT*.json"):
            shutil.copy(study, ctgov / full / study.name)
    with zipfile.ZipFile(shared / "data" / "AllPublicXML-2023-subset.zip", "w") as archive:
        for i, (condition, drug) in enumerate([("Asthma", "Budesonide")] * 3 + [("Gout", "X")]):
            archive.writestr(f"NCT0000{i:04d}/NCT9000{i:04d}.xml", tiny_xml(
                f"NCT9000{i:04d}", condition, drug))  # fmt: skip
    labels = shared / "labels"
    (labels / "trec-ct-2021").mkdir(parents=True)
    (labels / "pubmed-sisters-dev.json").write_text(json.dumps({"NCT00000004": ["NCT00000005"]}))
    (labels / "trec-ct-2021" / "queries.jsonl").write_text(
        json.dumps({"_id": "q1", "text": "a child with asthma on an inhaler"}) + "\n"
    )
    (labels / "trec-ct-2021" / "qrels.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\tNCT00000004\t2\nq1\tNCT00000007\t0\n"
    )
    sources = ["data/sample/ctg-studies-sample.json.zip", "data/sample/seed-cluster"]
    build = ["build", "--if-changed", "--quiet", "--jobs", "1", "-k", "5"]
    with pytest.MonkeyPatch.context() as patch, redirect_stdout(io.StringIO()):
        patch.chdir(repo)
        assert main([*build, *(f"--source={s}" for s in sources)]) == EXIT_OK
    return repo


def local(args: list[str], repo: Path) -> list[str]:
    """``args`` with absolute ``/tmp/`` paths moved under the test's folder."""
    return [str(repo / "tmp" / a.removeprefix("/tmp/")) if a.startswith("/tmp/") else a
            for a in args]  # fmt: skip


@pytest.mark.parametrize(("doc", "line"), EXAMPLES, ids=lambda v: str(v)[:70])
def test_every_documented_example_runs_as_written(doc, line, repo_like, monkeypatch, capsys):
    env, words = split_env(line)
    args = local(concrete(words[1:]), repo_like)
    if args and args[0] in NOT_RUN:
        make_parser().parse_args(args)
        return
    monkeypatch.chdir(repo_like)
    if env:  # in a child process, with its variables: a fault kills it, as documented
        command = [sys.executable, "-m", "recommender", *args]
        done = subprocess.run(command, env={**os.environ, **env, "PYTHONPATH": str(REPO)},
                              capture_output=True, text=True, timeout=300)  # fmt: skip
        killed = "RECOMMENDER_FAULT_AT" in env and done.returncode == -signal.SIGKILL
        assert done.returncode == EXIT_OK or killed, where(doc, line) + "\n" + done.stderr
        return
    try:
        code = main(args)
    except SystemExit as exc:  # --version and --help end here
        code = exc.code
    assert code == EXIT_OK, where(doc, line) + "\n" + capsys.readouterr().err


# -- benchmarks and scripts ---------------------------------------------------------------------


def bench_parser(module: str):
    return importlib.import_module(module).make_parser()


def bench_lines() -> list[tuple[Path, str]]:
    found = [(doc, line) for doc, line in of_kind("bench")]
    found += [(d, c) for d in DOCUMENTS for c in inline_commands(d) if c.startswith("python")]
    unique = {}
    for doc, line in found:
        unique.setdefault(line, (doc, line))
    return list(unique.values())


BENCH_LINES = bench_lines()


@pytest.mark.parametrize(("doc", "line"), BENCH_LINES, ids=lambda v: str(v)[:70])
def test_every_documented_benchmark_parses(doc, line):
    _, words = split_env(line)
    bench_parser(words[2]).parse_args(concrete(words[3:]))


def benches_to_run() -> list[tuple[Path, str]]:
    """The lines of :data:`RUN_BENCHES`, one per distinct command (lines that parse to
    the same options, as ``--index models/index`` and the default, run once)."""
    chosen, seen = [], set()
    for doc, line in BENCH_LINES:
        words = split_env(line)[1]
        if words[2].removeprefix("bench.") not in RUN_BENCHES:
            continue
        options = vars(bench_parser(words[2]).parse_args(concrete(words[3:])))
        key = (words[2], json.dumps(options, sort_keys=True, default=str))
        if key not in seen:
            seen.add(key)
            chosen.append((doc, line))
    return chosen


@pytest.mark.parametrize(("doc", "line"), benches_to_run(), ids=lambda v: str(v)[:70])
def test_benchmarks_run_as_written_on_a_tiny_corpus(doc, line, repo_like):
    _, words = split_env(line)
    args = local(concrete(words), repo_like)
    done = subprocess.run(args[:1] and [sys.executable, *args[1:]], cwd=repo_like,
                          env={**os.environ, "PYTHONPATH": str(REPO)},
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, where(doc, line) + "\n" + done.stdout + done.stderr


@pytest.mark.parametrize(("doc", "line"), of_kind("script"), ids=lambda v: str(v)[:70])
def test_documented_scripts_exist_and_answer_help(doc, line):
    _, words = split_env(line)
    script = REPO / words[1]
    assert script.is_file(), where(doc, line)
    done = subprocess.run([sys.executable, str(script), "--help"], cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)},
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0 and "usage" in done.stdout, where(doc, line)


# -- the service: curl, uvicorn ------------------------------------------------------------------


def curl_request(words: list[str]) -> tuple[str, str, dict, str | None]:
    """(method, path and query, headers, body) of a documented ``curl`` command."""
    method, headers, body, url = "GET", {}, None, None
    options = iter(words[1:])
    for word in options:
        if word in ("-X", "--request"):
            method = next(options)
        elif word in ("-H", "--header"):
            name, value = next(options).split(":", 1)
            headers[name.strip()] = os.path.expandvars(value.strip())
        elif word in ("-d", "--data"):
            body, method = next(options), "POST" if method == "GET" else method
        elif word in ("-o", "-w"):
            next(options)
        elif not word.startswith("-"):
            url = word
    assert url and url.startswith("http://127.0.0.1:8000/"), words
    return method, url.removeprefix("http://127.0.0.1:8000"), headers, body


@pytest.mark.parametrize(("doc", "line"), of_kind("curl"), ids=lambda v: str(v)[:70])
def test_documented_requests_are_answered(doc, line, repo_like, monkeypatch):
    from fastapi.testclient import TestClient

    from api.app import create_app

    monkeypatch.setenv("RECOMMENDER_ADMIN_TOKEN", "docs-token")
    _, words = split_env(line)
    method, path, headers, body = curl_request(words)
    client = TestClient(create_app(repo_like / "models" / "index", warm=False))
    response = client.request(method, path, headers=headers, content=body)
    assert response.status_code < 400, where(doc, line) + "\n" + response.text


@pytest.mark.parametrize(("doc", "line"), of_kind("uvicorn"), ids=lambda v: str(v)[:70])
def test_documented_uvicorn_commands_parse(doc, line):
    from uvicorn.importer import import_from_string
    from uvicorn.main import main as uvicorn_main

    _, words = split_env(line)
    context = uvicorn_main.make_context("uvicorn", words[1:])
    assert callable(import_from_string(context.params["app"])), where(doc, line)
    if context.params.get("http") not in (None, "auto", "h11", "httptools"):
        import_from_string(context.params["http"])


@pytest.mark.parametrize(("doc", "line"), of_kind("make"), ids=lambda v: str(v)[:70])
def test_make_lines_name_makefile_targets(doc, line):
    targets = set(re.findall(r"^([\w-]+):", (REPO / "Makefile").read_text(), re.M))
    for target in split_env(line)[1][1:]:
        if "=" not in target and not target.startswith("-"):
            assert target in targets, f"{where(doc, line)}: no target {target} in the Makefile"


def test_activation_is_documented_before_the_examples():
    lines = sh_lines(README)
    first_example = next(i for i, line in enumerate(lines) if line.startswith("recommender s"))
    assert ". .venv/bin/activate" in lines[:first_example]


# -- the README's Python ------------------------------------------------------------------------


def python_blocks(path: Path) -> list[str]:
    """The code of a Markdown file's ``python`` blocks, in order."""
    return re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), re.S)


PYTHON_EXAMPLES = python_blocks(README)


def run_python_examples(blocks: list[str], folder: Path, monkeypatch) -> None:
    """Run ``blocks`` one after another in one namespace, from ``folder``, as a
    notebook's cells would run."""
    monkeypatch.chdir(folder)
    namespace: dict = {"__name__": "__readme__"}
    with redirect_stdout(io.StringIO()):
        for block in blocks:
            exec(compile(block, "README.md", "exec"), namespace)


def test_the_readme_shows_python_first():
    headings = re.findall(r"^## (.+)$", README.read_text(), re.M)
    assert headings[0] == "From Python"
    assert len(PYTHON_EXAMPLES) >= 2 and "import recommender" in PYTHON_EXAMPLES[0]


def test_the_readme_python_examples_run(repo_like, monkeypatch):
    without_pandas = [block for block in PYTHON_EXAMPLES if "to_pandas" not in block]
    run_python_examples(without_pandas, repo_like, monkeypatch)


def test_the_readme_pandas_example_runs(repo_like, monkeypatch):
    pytest.importorskip("pandas")
    run_python_examples(PYTHON_EXAMPLES, repo_like, monkeypatch)
