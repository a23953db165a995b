"""How a pass over many rows is cut into tasks for joblib's threads (or a cluster's).

The update's passes (copying rows, merging lists, exact searches of a few hundred
rows) run as tasks of consecutive rows; this says how many rows each gets.
"""

from __future__ import annotations

from joblib import effective_n_jobs

ROWS_PER_TASK = 512  # rows per parallel task at most
COPY_ROWS_PER_TASK = 65536  # when a task only copies rows


def row_blocks(n: int, n_jobs: int, largest: int = ROWS_PER_TASK) -> list[tuple[int, int]]:
    """``(start, stop)`` ranges covering rows ``0..n``, at most ``largest`` rows each."""
    # Four tasks per thread at least: an update searches a few hundred rows at tens of
    # milliseconds each, and blocks of 512 left one thread with most of them.
    size = max(1, min(largest, -(-n // (4 * effective_n_jobs(n_jobs)))))
    return [(a, min(a + size, n)) for a in range(0, n, size)]
