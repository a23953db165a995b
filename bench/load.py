"""Time the load of an index with and without the range check of its column indices.

``TrialIndex.load`` checks that every column index of the vectors and the postings is
in range (:func:`recommender.index.checks.range_problems`: the kernels index with
them). This loads the index ``--rounds`` times each way, alternating (with, without,
with, ...) so that both see the same machine, and prints the median of each, their
difference, and the check alone on the two arrays. ``--verify`` also hashes every
file, as the server and the CLI do (which reads the pages the check then finds in
memory)::

    python -m bench.load --index models/index --rounds 7 --verify
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
from pathlib import Path

from bench.common import Timer, print_table
from recommender.index import TrialIndex, loaded
from recommender.index.checks import range_problems


def _load(index: Path, verify: bool, check: bool) -> float:
    original = loaded.range_problems
    if not check:
        loaded.range_problems = lambda *args: []
    try:
        with Timer() as timer:
            opened = TrialIndex.load(index, verify=verify)
    finally:
        loaded.range_problems = original
    del opened
    gc.collect()
    return timer.seconds


def make_parser() -> argparse.ArgumentParser:
    """The options of ``python -m bench.load`` (the docs' commands are checked against it)."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.load", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--index", type=Path, required=True, help="index to load")
    parser.add_argument("--rounds", type=int, default=7, help="loads each way (%(default)s)")
    parser.add_argument("--verify", action="store_true", help="hash every file too")
    return parser


def main() -> None:
    args = make_parser().parse_args()
    index = TrialIndex.load(args.index, verify=False)  # compiles the check, warms the cache
    n, d = index.vectors.shape
    arrays = {
        "vectors": (index.vectors.indices, d),
        "postings": (index.search.postings_.indices, n),
    }
    times: dict[bool, list[float]] = {True: [], False: []}
    alone = []
    for _ in range(args.rounds):
        for check in (True, False):
            times[check].append(_load(args.index, args.verify, check))
        with Timer() as timer:
            for name, (values, upper) in arrays.items():
                assert range_problems(name, values, upper, "column") == []
        alone.append(timer.seconds)
    median = {check: statistics.median(values) for check, values in times.items()}
    nnz = index.vectors.nnz
    megabytes = nnz * index.vectors.indices.itemsize / 1e6
    print(
        f"{len(index):,} studies, {nnz:,} non-zeros (2 x {megabytes:.0f} MB of column "
        f"indices), {os.cpu_count()} cores, verify={args.verify}, {args.rounds} rounds"
    )
    print_table(
        [
            {"load": "with the check", "median s": f"{median[True]:.3f}",
             "range s": f"{min(times[True]):.3f}-{max(times[True]):.3f}"},
            {"load": "without", "median s": f"{median[False]:.3f}",
             "range s": f"{min(times[False]):.3f}-{max(times[False]):.3f}"},
            {"load": "difference", "median s": f"{median[True] - median[False]:+.3f}"},
            {"load": "the check alone", "median s": f"{statistics.median(alone):.3f}",
             "range s": f"{min(alone):.3f}-{max(alone):.3f}"},
        ],
        ["load", "median s", "range s"],
    )  # fmt: skip


if __name__ == "__main__":
    main()
