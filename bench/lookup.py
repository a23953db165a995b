"""Lookup latency of an indexed trial, as the service answers ``GET /similar/{id}``.

    python -m bench.lookup [--index models/index] [--lookups 1000] [--k 10]

For a seeded random choice of indexed trials, each answered once with nothing kept (a
trial not asked about lately) and once more, times the whole answer of
:func:`api.service.similar_to_trial_payload` (ranking, reasons, titles), in process,
split by how the trial asks:

- ``rich``: a trial with a condition or an intervention, answered from its stored
  list and row;
- ``thin, first``: a thin trial, whose record is read as a draft would be
  (:meth:`TrialIndex.lookup_query`) and searched with, from its stored list;
- ``thin, kept``: the same trial asked again (its reading and answer kept);
- ``scipy X @ q`` (baseline): the plain exact search of the same readings, ``X @ q.T``
  then ``argpartition`` (the reading itself not in this figure), as
  ``python -m bench.query`` times it.

Also prints the recall@k of the thin trials' answers against that exact search (they
are searched from their stored lists, :meth:`TrialIndex.asked_kneighbors`), and the
share of a thin trial's stored top ``k`` (found with its row, what the lookup answered
before its reading) that its reading's answer keeps.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from api.service import similar_to_trial_payload
from bench.common import print_table
from bench.query import percentile_ms, scipy_top_k
from recommender.index import TrialIndex

NO_FILTERS: dict[str, list[str]] = {"status": [], "phase": [], "study_type": []}


def make_parser() -> argparse.ArgumentParser:
    """The options of ``python -m bench.lookup`` (the docs' commands are checked against it)."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.lookup", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--index", type=Path, default=Path("models/index"))
    parser.add_argument("--lookups", type=int, default=1000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    return parser


def timed_answer(index: TrialIndex, nct_id: str, k: int) -> float:
    start = time.perf_counter()
    similar_to_trial_payload(index, nct_id, k, NO_FILTERS)
    return time.perf_counter() - start


def main(argv: Sequence[str] | None = None) -> None:
    args = make_parser().parse_args(argv)
    index = TrialIndex.load(args.index)
    rng = np.random.default_rng(args.seed)
    positions = rng.choice(len(index), size=min(args.lookups, len(index)), replace=False)
    timings: dict[str, list[float]] = {"rich": [], "thin, first": [], "thin, kept": []}
    baseline, kept, recall = [], [], []
    for pos in (int(p) for p in positions[:2]):  # compile and load outside the timing
        similar_to_trial_payload(index, str(index.ids[pos]), args.k, NO_FILTERS)
    index.asked.forget()
    for pos in (int(p) for p in positions):
        nct_id = str(index.ids[pos])
        if not index.asked.reads_prose(pos):
            timings["rich"].append(timed_answer(index, nct_id, args.k))
            continue
        timings["thin, first"].append(timed_answer(index, nct_id, args.k))
        timings["thin, kept"].append(timed_answer(index, nct_id, args.k))
        query = index.lookup_query(pos)
        start = time.perf_counter()
        exact = scipy_top_k(index.vectors, query, args.k, pos)
        baseline.append(time.perf_counter() - start)
        stored = np.asarray(index.neighbour_indices[pos][: args.k])
        stored = set(stored[stored >= 0].tolist())
        answered = {n.position for n in index.similar(nct_id, args.k)}
        kept.append(len(stored & answered) / max(len(stored), 1))
        recall.append(len(answered & set(exact.tolist())) / len(exact))
    timings["scipy X @ q (baseline)"] = baseline
    rows = [
        {"lookup": name, "n": len(t), "p50 ms": percentile_ms(t, 50),
         "p99 ms": percentile_ms(t, 99)}
        for name, t in timings.items() if t
    ]  # fmt: skip
    print(f"GET /similar/{{id}} answers, top-{args.k}, in process, over {len(index):,} trials")
    print_table(rows, list(rows[0]))
    if kept:
        print(f"thin: recall@{args.k} of the answers against the baseline's exact search: "
              f"{np.mean(recall):.4f}")  # fmt: skip
        print(f"thin: share of the stored top-{args.k} (by row) that the reading's answer "
              f"keeps: {np.mean(kept):.4f}")  # fmt: skip


if __name__ == "__main__":
    main()
