"""End-to-end build: `recommender build` against the plain pipeline a user would write.

    python -m bench.build [--source PATH ...] [--jobs 2] [--no-baseline]

Both run as child processes in the same call; the total memory of each process tree
(workers included) is sampled every 0.2 s for its peak.

- ``recommender build``: the product (four field groups, exact-rescored pruned
  neighbours, a saved and hashed index); stage seconds come from the index metadata.
- plain pipeline (baseline): what a competent user writes: read the zip with ``json``,
  one ``TfidfVectorizer(sublinear_tf=True, min_df=2, stop_words="english")`` over
  titles, summaries, conditions, keywords and intervention names joined,
  ``sparse_dot_topn`` top-(k + 1) on ``n_threads=jobs``; nothing saved;
- with ``--weak-baseline``, also the same pipeline with scikit-learn's default
  ``TfidfVectorizer`` (no stop words, no ``min_df``), whose sparse product is about
  three times dearer: a second, labelled row, not the yardstick.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import psutil

from bench.common import Timer, print_table, write_result
from recommender.ingest import extract_sources

# `make serve`'s sources: the bulk JSON, the legacy XML records, the reference trials.
DEFAULT_SOURCES = [str(path) for path in extract_sources("../shared/data")]


def run_sampled(command: list[str]) -> tuple[float, float]:
    """Run ``command``; return its wall seconds and the peak MB of its process tree."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    parent = psutil.Process(process.pid)
    peak = 0.0
    while process.poll() is None:
        try:
            tree = [parent, *parent.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()) / 2**20)
        except psutil.Error:
            pass  # a worker ended between listing and reading
        time.sleep(0.2)
    if process.returncode:
        raise subprocess.CalledProcessError(process.returncode, command)
    return time.perf_counter() - start, peak


def plain_pipeline(zip_path: Path, k: int, jobs: int, *, weak: bool = False) -> dict[str, float]:
    """The baseline, stage by stage (``weak``: default ``TfidfVectorizer`` settings)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sparse_dot_topn import sp_matmul_topn

    from recommender.evaluation.baselines import plain_tfidf

    seconds = {}
    with Timer() as t, zipfile.ZipFile(zip_path) as archive:
        texts = [_text(json.loads(archive.read(n))) for n in archive.namelist()]
    seconds["read"] = t.seconds
    with Timer() as t:
        vectorizer = TfidfVectorizer(dtype=np.float32) if weak else plain_tfidf()
        X = vectorizer.fit_transform(texts)
    seconds["vectorise"] = t.seconds
    with Timer() as t:
        sp_matmul_topn(X, X.T.tocsr(), top_n=k + 1, n_threads=jobs)
    seconds["neighbours"] = t.seconds
    return seconds


def _text(study: dict) -> str:
    p = study.get("protocolSection", {})
    identification = p.get("identificationModule", {})
    description = p.get("descriptionModule", {})
    conditions = p.get("conditionsModule", {})
    parts = [
        identification.get("briefTitle", ""),
        identification.get("officialTitle", ""),
        description.get("briefSummary", ""),
        description.get("detailedDescription", ""),
        " ".join(conditions.get("conditions", [])),
        " ".join(conditions.get("keywords", [])),
        " ".join(i.get("name", "") for i in _interventions(p)),
    ]
    return " ".join(parts)


def _interventions(protocol: dict) -> list[dict]:
    return protocol.get("armsInterventionsModule", {}).get("interventions", [])


def _baseline_row(tmp: str, source: str, args: argparse.Namespace, variant: str) -> dict:
    result = Path(tmp) / f"baseline-{variant}.json"
    command = [sys.executable, "-m", "bench.build", "--baseline-child", variant,
               "--result", str(result), "--k", str(args.k), "--jobs", str(args.jobs),
               f"--source={source}"]  # fmt: skip
    wall, peak = run_sampled(command)
    stages = json.loads(result.read_text())
    stages.pop("peak_mb")
    label = "plain pipeline (baseline)" if variant == "strong" else "plain, default TF-IDF (weak)"
    return {"pipeline": label, "total s": round(wall, 1), **stages, "peak MB": round(peak)}


def make_parser() -> argparse.ArgumentParser:
    """The options of ``python -m bench.build`` (the docs' commands are checked against it)."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.build", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--source", action="append", help="default: the shared corpus")
    parser.add_argument("--k", type=int, default=50)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--scheduler", help="also pass --scheduler to recommender build")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--weak-baseline", action="store_true", help="also the default-TF-IDF row")
    parser.add_argument("--baseline-child", choices=["strong", "weak"], help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = make_parser().parse_args(argv)
    sources = args.source or DEFAULT_SOURCES
    if args.baseline_child:
        seconds = plain_pipeline(
            Path(sources[0]), args.k, args.jobs, weak=args.baseline_child == "weak"
        )
        return write_result(args.result, **{k: round(v, 1) for k, v in seconds.items()})

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "index"
        command = [sys.executable, "-m", "recommender", "build", "--quiet", "--out", str(out),
                   "-k", str(args.k), "--jobs", str(args.jobs)]  # fmt: skip
        command += [f"--source={s}" for s in sources]
        if args.scheduler:
            command += ["--scheduler", args.scheduler]
        wall, peak = run_sampled(command)
        meta = json.loads((out / "meta.json").read_text())
        size = sum(p.stat().st_size for p in out.iterdir()) / 2**20
        rows.append({"pipeline": "recommender build", "total s": round(wall, 1),
                     **{k: round(v, 1) for k, v in meta["seconds"].items()},
                     "peak MB": round(peak), "index MB": round(size),
                     "studies": meta["counts"]["studies"]})  # fmt: skip
        variants = [] if args.no_baseline else ["strong"] + (["weak"] * args.weak_baseline)
        for variant in variants:
            rows.append(_baseline_row(tmp, sources[0], args, variant))
        if variants:
            rows[0]["vs baseline"] = f"{rows[1]['total s'] / rows[0]['total s']:.2f}x faster"
    columns = ["pipeline", "total s", "read", "vectorise", "neighbours", "save", "peak MB",
               "index MB", "studies", "vs baseline"]  # fmt: skip
    print(f"end-to-end build, top-{args.k}, {args.jobs} cores, sources: {', '.join(sources)}")
    print_table(rows, columns)


if __name__ == "__main__":
    main()
