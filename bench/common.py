"""Shared pieces of the benchmark scripts: loading a built index's matrix, timing
a method in a child process (so each gets its own peak-memory figure), recall."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from recommender.index import read_meta


def load_vectors(index: Path) -> sp.csr_matrix:
    """The (n_trials, n_features) float32 CSR matrix stored in an index folder."""
    counts = read_meta(index)["counts"]
    parts = [
        np.load(index / f"vectors.{p}.npy", allow_pickle=False)
        for p in ("data", "indices", "indptr")
    ]
    return sp.csr_matrix(tuple(parts), shape=(counts["studies"], counts["features"]))


def peak_rss_mb() -> float:
    """This process's peak resident memory, MB (Linux reports KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(module: str, args: Sequence[str], *, result: Path) -> dict:
    """Run ``python -m module ARGS --result FILE`` in a fresh process (its own peak
    memory) and return the JSON it wrote to FILE."""
    command = [sys.executable, "-m", module, *args, "--result", str(result)]
    subprocess.run(command, check=True)
    return json.loads(result.read_text())


def write_result(path: str | None, **values) -> None:
    values["peak_mb"] = round(peak_rss_mb(), 1)
    text = json.dumps(values)
    if path:
        Path(path).write_text(text)
    print(text)


def recall_at(found: np.ndarray, exact: np.ndarray, k: int) -> float:
    """Mean share of each row's exact top-k (ignoring padding) that ``found`` lists."""
    shares = []
    for got, want in zip(found[:, :k], exact[:, :k], strict=True):
        want = set(want[want >= 0].tolist())
        if want:
            shares.append(len(want & set(got.tolist())) / len(want))
    return float(np.mean(shares)) if shares else 1.0


class Timer:
    def __enter__(self) -> Timer:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.start


def print_table(rows: list[dict], columns: Sequence[str]) -> None:
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns))
    for row in rows:
        print("  ".join(str(row.get(c, "")).ljust(widths[c]) for c in columns))
