"""How build time and memory grow with corpus size, locally and on a Dask cluster.

    python -m bench.scale [--sizes 114697,300000,600000] [--workdir /tmp/scale] [--dask]

For each size, a synthetic registry (``bench.synthetic``: the real corpus, then
perturbed copies of real studies) is built with ``recommender build``, on this
machine's cores and, with ``--dask``, on a ``LocalCluster`` of two worker processes
started here (same code, ``--scheduler``). Prints seconds per stage and the peak
memory of the build's processes (cluster workers and scheduler included), then fits
``seconds = a * n ** b`` per stage over the sizes and prints the exponents ``b``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import psutil

from bench.common import print_table

# Stage seconds recorded in the index metadata (saving happens after it is written).
STAGES = ("read", "vectorise", "neighbours")


def tree_peak(command: list[str], *, with_self: bool) -> tuple[float, float]:
    """Wall seconds of ``command`` and the peak MB of this process's children while it
    runs (the build, and Dask workers started by this process); ``with_self`` adds
    this process (where a LocalCluster's scheduler runs). Without it, the figure is
    the build's own: this script's interpreter is not part of what is measured."""
    me = psutil.Process(os.getpid())
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    peak = 0.0
    while process.poll() is None:
        try:
            tree = [*([me] if with_self else []), *me.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree) / 2**20)
        except psutil.Error:
            pass
        time.sleep(0.2)
    if process.returncode:
        raise subprocess.CalledProcessError(process.returncode, command)
    return time.perf_counter() - start, peak


def build(corpus: Path, scheduler: str | None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "index"
        command = [sys.executable, "-m", "recommender", "build", "--quiet",
                   "--source", str(corpus), "--out", str(out), "--jobs", "2"]  # fmt: skip
        if scheduler:
            command += ["--scheduler", scheduler]
        wall, peak = tree_peak(command, with_self=scheduler is not None)
        meta = json.loads((out / "meta.json").read_text())
    return {"total": round(wall, 1), **meta["seconds"], "peak MB": round(peak),
            "nonzeros": meta["counts"]["nonzeros"]}  # fmt: skip


def exponent(sizes: list[int], seconds: list[float]) -> float:
    """Least-squares slope of log(seconds) against log(size)."""
    return float(np.polyfit(np.log(sizes), np.log(seconds), 1)[0])


def make_parser() -> argparse.ArgumentParser:
    """The options of ``python -m bench.scale`` (the docs' commands are checked against it)."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.scale", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--sizes", default="114697,300000,600000")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "scale")
    parser.add_argument("--source", type=Path, default=Path("../shared/data/ctg-studies.json.zip"))
    parser.add_argument("--dask", action="store_true", help="also build on a LocalCluster")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = make_parser().parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    args.workdir.mkdir(parents=True, exist_ok=True)
    modes = ["local"] + (["dask"] if args.dask else [])
    cluster = None
    if args.dask:
        from dask.distributed import LocalCluster

        cluster = LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None)
    rows = []
    try:
        for size in sizes:
            corpus = args.workdir / f"synthetic-{size}.jsonl"
            if not corpus.exists():
                # In a child process, so this process's memory stays small: the
                # peak of the whole tree is what is measured.
                generate = [sys.executable, "-m", "bench.synthetic", "--studies", str(size),
                            "--out", str(corpus), "--source", str(args.source)]  # fmt: skip
                subprocess.run(generate, check=True)
            for mode in modes:
                scheduler = cluster.scheduler_address if mode == "dask" else None
                rows.append({"studies": size, "mode": mode, **build(corpus, scheduler)})
                print(json.dumps(rows[-1]), flush=True)
    finally:
        if cluster is not None:
            cluster.close()
    print(f"\nbuild cost by corpus size (synthetic, from {args.source})")
    print_table(rows, ["studies", "mode", "total", *STAGES, "peak MB", "nonzeros"])
    if len(sizes) > 1:
        print("\nfitted exponent b in seconds = a * studies ** b")
        fits = []
        for mode in modes:
            mine = [r for r in rows if r["mode"] == mode]
            fit = {"mode": mode}
            for stage in ("total", *STAGES):
                seconds = [r[stage] for r in mine]
                fit[stage] = round(exponent([r["studies"] for r in mine], seconds), 2)
            fits.append(fit)
        print_table(fits, ["mode", "total", *STAGES])


if __name__ == "__main__":
    main()
