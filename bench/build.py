"""End-to-end build: `recommender build` against the plain pipeline a user would write.

    python -m bench.build [--source PATH ...] [--jobs 2] [--no-baseline]

Both run as child processes in the same call; the total memory of each process tree
(workers included) is sampled every 0.2 s for its peak.

- ``recommender build``: the product (four field groups, exact-rescored pruned
  neighbours, a saved and hashed index); stage seconds come from the index metadata.
- plain pipeline (baseline): read the zip with ``json``, one scikit-learn
  ``TfidfVectorizer`` over title, summaries, conditions and interventions joined,
  ``sparse_dot_topn`` top-50 on ``n_threads=jobs``; nothing saved.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import psutil

from bench.common import Timer, print_table, write_result

DEFAULT_SOURCES = ["../shared/data/ctg-studies.json.zip", "../shared/data/seed-cluster"]


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


def plain_pipeline(zip_path: Path, k: int, jobs: int) -> dict[str, float]:
    """The baseline, stage by stage."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sparse_dot_topn import sp_matmul_topn

    seconds = {}
    with Timer() as t, zipfile.ZipFile(zip_path) as archive:
        texts = [_text(json.loads(archive.read(n))) for n in archive.namelist()]
    seconds["read"] = t.seconds
    with Timer() as t:
        X = TfidfVectorizer(dtype=np.float32).fit_transform(texts)
    seconds["vectorise"] = t.seconds
    with Timer() as t:
        sp_matmul_topn(X, X.T.tocsr(), top_n=k + 1, n_threads=jobs)
    seconds["neighbours"] = t.seconds
    return seconds


def _text(study: dict) -> str:
    p = study.get("protocolSection", {})
    parts = [
        p.get("identificationModule", {}).get("briefTitle", ""),
        p.get("descriptionModule", {}).get("briefSummary", ""),
        p.get("descriptionModule", {}).get("detailedDescription", ""),
        " ".join(p.get("conditionsModule", {}).get("conditions", [])),
        " ".join(i.get("name", "") for i in _interventions(p)),
    ]  # fmt: skip
    return " ".join(parts)


def _interventions(protocol: dict) -> list[dict]:
    return protocol.get("armsInterventionsModule", {}).get("interventions", [])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", action="append", help="default: the shared corpus")
    parser.add_argument("--k", type=int, default=50)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--scheduler", help="also pass --scheduler to recommender build")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--baseline-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sources = args.source or DEFAULT_SOURCES
    if args.baseline_child:
        seconds = plain_pipeline(Path(sources[0]), args.k, args.jobs)
        return write_result(args.result, **{k: round(v, 1) for k, v in seconds.items()})

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "index"
        command = [sys.executable, "-m", "recommender.cli", "build", "--quiet", "--out", str(out),
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
        if not args.no_baseline:
            result = Path(tmp) / "baseline.json"
            command = [sys.executable, "-m", "bench.build", "--baseline-child", "--result",
                       str(result), "--k", str(args.k), "--jobs", str(args.jobs),
                       f"--source={sources[0]}"]  # fmt: skip
            wall, peak = run_sampled(command)
            stages = json.loads(result.read_text())
            stages.pop("peak_mb")
            rows.append({"pipeline": "plain pipeline (baseline)", "total s": round(wall, 1),
                         **stages, "peak MB": round(peak)})  # fmt: skip
            rows[0]["vs baseline"] = f"{rows[1]['total s'] / rows[0]['total s']:.1f}x faster"
    columns = ["pipeline", "total s", "read", "vectorise", "neighbours", "save", "peak MB",
               "index MB", "studies", "vs baseline"]  # fmt: skip
    print(f"end-to-end build, top-{args.k}, {args.jobs} cores, sources: {', '.join(sources)}")
    print_table(rows, columns)


if __name__ == "__main__":
    main()
