"""On-the-fly query latency: a trial that is not in the precomputed lists.

    python -m bench.query [--index models/index] [--queries 300] [--k 10]

For a seeded random choice of indexed trials, each treated as new (its record is
vectorised again as a query, as the service reads a posted draft, and searched with
itself excluded), times:

- ``ours``: ``CosineNeighbours.kneighbors`` (postings walk fused with top-k);
- ``scipy X @ q`` (baseline): ``(X @ q.T)`` on the CSR matrix, then ``argpartition``;
- ``vectorise``: turning the record into its query vector (the same for both;
  ``TrialIndex.query_vector``, which also reads a record with no condition and no
  intervention into those groups).

Prints p50/p99 per method and the ratio of medians.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bench.common import print_table
from recommender.core import EmptyQueryError
from recommender.index import TrialIndex


def percentile_ms(times: list[float], q: float) -> float:
    return round(float(np.percentile(times, q)) * 1000, 2)


def scipy_top_k(X, q, k: int, exclude: int) -> np.ndarray:
    scores = (X @ q.T).toarray().ravel()
    scores[exclude] = -np.inf
    top = np.argpartition(-scores, k)[:k]
    return top[np.argsort(-scores[top], kind="stable")]


def make_parser() -> argparse.ArgumentParser:
    """The options of ``python -m bench.query`` (the docs' commands are checked against it)."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.query", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--index", type=Path, default=Path("models/index"))
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = make_parser().parse_args(argv)

    index = TrialIndex.load(args.index)
    rng = np.random.default_rng(args.seed)
    positions = rng.choice(len(index), size=min(args.queries, len(index)), replace=False)
    X = index.vectors
    search = index.search
    timings: dict[str, list[float]] = {"vectorise": [], "ours": [], "scipy": []}
    agree = 0
    search.kneighbors(X[:1], args.k)  # compile outside the timing
    for pos in positions:
        record = index.records[int(pos)]
        start = time.perf_counter()
        try:
            q = index.query_vector(record)
        except EmptyQueryError:  # a trial with no word the index knows: nothing to ask
            continue
        timings["vectorise"].append(time.perf_counter() - start)
        start = time.perf_counter()
        ids, _ = search.kneighbors(q, args.k, exclude=np.array([pos]))
        timings["ours"].append(time.perf_counter() - start)
        start = time.perf_counter()
        ref = scipy_top_k(X, q, args.k, int(pos))
        timings["scipy"].append(time.perf_counter() - start)
        agree += len(set(ids[0].tolist()) & set(ref.tolist())) / args.k
    base = np.median(timings["scipy"])
    rows = [
        {
            "step": name + (" (baseline)" if name == "scipy" else ""),
            "p50 ms": percentile_ms(t, 50),
            "p99 ms": percentile_ms(t, 99),
            "vs baseline": "" if name == "vectorise" else f"{base / np.median(t):.1f}x faster",
        }
        for name, t in (("ours", timings["ours"]), ("scipy", timings["scipy"]),
                        ("vectorise", timings["vectorise"]))
    ]  # fmt: skip
    asked = len(timings["ours"])
    print(f"on-the-fly top-{args.k}: {asked} queries over {len(index):,} trials")
    print_table(rows, list(rows[0]))
    print(f"same top-{args.k} as the baseline: {agree / asked:.4f}")


if __name__ == "__main__":
    main()
