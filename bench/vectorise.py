"""Vectorising the corpus: our field-group vectoriser against one TfidfVectorizer.

    python -m bench.vectorise [--source ../shared/data/ctg-studies.json.zip] [--jobs 2]
    python -m bench.vectorise --only ours|baseline     # one side, for farm-bench pairs

Reads the records once (not timed), then times in this process, one after the other:

- ``FieldGroupVectorizer(n_jobs=jobs).fit_transform``: four field groups, phrases and
  n-grams, terms counted by the compiled pass of ``recommender.terms`` in chunks on
  ``jobs`` threads;
- ``TfidfVectorizer.fit_transform`` (baseline): scikit-learn's default settings,
  float32, over the same text (every group's strings of a record joined), one
  process.

With ``--only`` just that side runs and prints one JSON line (its seconds and the
process's peak memory), so ``farm-bench`` can alternate the two over several runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

from bench.common import Timer, print_table, write_result
from recommender.ingest import read_records
from recommender.text import DEFAULT_FIELD_GROUPS, FieldGroupVectorizer


def ours(records, jobs: int):
    return FieldGroupVectorizer(n_jobs=jobs).fit_transform(records)


def baseline(records, jobs: int):
    texts = [" ".join(s for g in DEFAULT_FIELD_GROUPS for s in g.items(r)) for r in records]
    with Timer() as timer:
        matrix = TfidfVectorizer(dtype=np.float32).fit_transform(texts)
    return matrix, timer.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=Path("../shared/data/ctg-studies.json.zip"))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--only", choices=["ours", "baseline"])
    args = parser.parse_args()
    records, _ = read_records([args.source])

    if args.only == "ours":
        with Timer() as timer:
            X = ours(records, args.jobs)
        write_result(None, side="ours", seconds=round(timer.seconds, 2), nnz=int(X.nnz))
        return
    if args.only == "baseline":
        B, seconds = baseline(records, args.jobs)
        write_result(None, side="baseline", seconds=round(seconds, 2), nnz=int(B.nnz))
        return

    with Timer() as timer:
        X = ours(records, args.jobs)
    B, base_seconds = baseline(records, args.jobs)
    rows = [
        {"vectoriser": f"FieldGroupVectorizer, {args.jobs} threads",
         "seconds": round(timer.seconds, 1),
         "features": X.shape[1], "non-zeros": X.nnz,
         "vs baseline": f"{base_seconds / timer.seconds:.2f}x faster"},
        {"vectoriser": "TfidfVectorizer, one process (baseline)", "seconds": round(base_seconds, 1),
         "features": B.shape[1], "non-zeros": B.nnz, "vs baseline": ""},
    ]  # fmt: skip
    print(f"vectorising {len(records):,} studies from {args.source}")
    print_table(rows, list(rows[0]))


if __name__ == "__main__":
    main()
