"""Every trial's related list as rows for a database: ``recommender export``.

One row per (trial, related trial): ``query_id, rank, related_id, score``, in the
order of the index's trials and, within a trial, by rank — what
:meth:`TrialIndex.similar` returns for each trial. Rows are made a block of trials at
a time from the index's neighbour arrays (read from their files, not kept mapped), so
the whole registry exports in bounded memory; a thin trial's list is its nearest by
its reading (:meth:`TrialIndex.lookup_query`), a block's thin trials read and searched
together. A file is written under a temporary name and renamed into place, so an
interrupted export leaves no half-written file.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np
from joblib import Parallel, delayed, effective_n_jobs

from recommender.index import TrialIndex
from recommender.neighbours import NO_NEIGHBOUR

FORMATS = ("csv", "jsonl")
COLUMNS = ("query_id", "rank", "related_id", "score")
DEFAULT_BLOCK_ROWS = 1024


class ExportError(ValueError):
    """An export that cannot be done as asked (bad format, k or destination)."""


@dataclass(frozen=True)
class ExportSummary:
    """What an export wrote: ``trials`` query trials, ``rows`` rows, at most ``k`` each."""

    trials: int
    rows: int
    k: int


def export_related(
    index: TrialIndex,
    out: str | os.PathLike,
    fmt: str = "csv",
    *,
    k: int | None = None,
    block_rows: int = DEFAULT_BLOCK_ROWS,
    n_jobs: int = -1,
) -> ExportSummary:
    """Write every trial's related list, as :meth:`TrialIndex.similar` gives it, to
    ``out``.

    Parameters
    ----------
    index : TrialIndex
    out : path or "-"
        File to write (replaced whole, only once complete), or ``"-"`` for stdout.
    fmt : {"csv", "jsonl"}, default "csv"
        ``csv``: a header line ``query_id,rank,related_id,score`` then one line per
        row. ``jsonl``: one JSON object per row with those keys.
    k : int, optional
        Related trials per trial, at most the ``k`` the index stores (the default).
    block_rows : int, default 1024
        Trials formatted at once (about 25 MB of Python strings at k=50); memory
        grows with it, not with the index.
    n_jobs : int, default -1
        Threads searching the thin trials of a block (-1: one per core).

    Returns
    -------
    ExportSummary

    Raises
    ------
    ExportError
        Unknown format, ``k`` out of range, or a destination that cannot be written.
    """
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    stored_k = int(index.neighbour_indices.shape[1])
    k = stored_k if k is None else k
    if not 1 <= k <= stored_k:
        raise ExportError(
            f"--k must be 1..{stored_k}: this index stores {stored_k} related trials per "
            "trial (rebuild with a larger -k for more)"
        )
    if str(out) == "-":
        rows = _write(sys.stdout, index, fmt, k, block_rows, n_jobs)
    else:
        rows = _write_atomically(Path(out), index, fmt, k, block_rows, n_jobs)
    return ExportSummary(trials=len(index), rows=rows, k=k)


def _write_atomically(
    out: Path, index: TrialIndex, fmt: str, k: int, block_rows: int, n_jobs: int
) -> int:
    if out.is_dir():
        raise ExportError(f"{out} is a folder; give a file name")
    if not out.parent.is_dir():
        raise ExportError(f"folder {out.parent} does not exist")
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    try:
        # newline="": rows end in "\n" on every platform (what database loaders expect).
        with open(tmp, "w", encoding="utf-8", newline="") as handle:
            rows = _write(handle, index, fmt, k, block_rows, n_jobs)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return rows


def _write(
    handle: TextIO, index: TrialIndex, fmt: str, k: int, block_rows: int, n_jobs: int
) -> int:
    if fmt == "csv":
        handle.write(",".join(COLUMNS) + "\n")
    rows = 0
    for text, count in iter_blocks(index, fmt, k, block_rows, n_jobs):
        handle.write(text)
        rows += count
    return rows


def iter_blocks(
    index: TrialIndex, fmt: str, k: int, block_rows: int = DEFAULT_BLOCK_ROWS, n_jobs: int = -1
) -> Iterator[tuple[str, int]]:
    """Rows of ``block_rows`` trials at a time, formatted: ``(text, number of rows)``."""
    ids = index.ids
    for start in range(0, len(ids), block_rows):
        stop = min(start + block_rows, len(ids))
        related, scores = _as_asked(
            index,
            start,
            read_rows(index.neighbour_indices, start, stop),
            read_rows(index.neighbour_scores, start, stop),
            k,
            n_jobs,
        )
        present = related != NO_NEIGHBOUR
        # The rank counts only real neighbours, as TrialIndex.similar does.
        ranks = np.cumsum(present, axis=1)
        row, col = np.nonzero(present)
        columns = zip(
            ids[start + row].tolist(),
            ranks[row, col].tolist(),
            ids[related[row, col]].tolist(),
            # float32's shortest round-trip text: the stored score exactly, no noise digits.
            scores[row, col].astype(str).tolist(),
            strict=True,
        )
        yield _format_lines(columns, fmt), len(row)


def _as_asked(
    index: TrialIndex,
    start: int,
    related: np.ndarray,
    scores: np.ndarray,
    k: int,
    n_jobs: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The first ``k`` of the stored lists of rows ``start:start + len(related)``, with
    each thin trial's replaced by its ``k`` nearest by its reading (a block's thin
    trials read together and searched from their stored lists), as
    :meth:`TrialIndex.similar` answers them."""
    thin = np.flatnonzero([index.asked.reads_prose(start + i) for i in range(len(related))])
    if not len(thin):
        return related[:, :k], scores[:, :k]
    positions = start + thin
    stored = related[thin], scores[thin]  # whole lists: they bound the readings' scores

    def answer(share: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        queries = index.asked.vectors_of(positions[share])
        lists = stored[0][share], stored[1][share]
        return index.asked_kneighbors(positions[share], queries, k, lists=lists)

    # One share of the block's thin trials per thread: the searches and the compiled
    # parts of reading release the GIL.
    threads = min(effective_n_jobs(n_jobs), len(positions))
    shares = np.array_split(np.arange(len(positions)), threads)
    answers = Parallel(n_jobs=len(shares), backend="threading")(
        delayed(answer)(share) for share in shares
    )
    related, scores = related[:, :k].copy(), scores[:, :k].copy()  # a file's block is read-only
    related[thin] = np.concatenate([a[0] for a in answers])
    scores[thin] = np.concatenate([a[1] for a in answers])
    return related, scores


def read_rows(array: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Rows ``start:stop`` of a 2-d array, read with one ``pread`` when it is a
    memory-mapped file.

    Slicing the map would leave every page read mapped into the process until the end,
    so its resident memory would grow with the index (8 bytes x k per trial); a copy
    read from the file is freed with its block.
    """
    if not (isinstance(array, np.memmap) and array.filename and array.flags.c_contiguous):
        return np.array(array[start:stop])
    row_bytes = array.shape[1] * array.itemsize
    with open(array.filename, "rb") as handle:
        data = os.pread(
            handle.fileno(), (stop - start) * row_bytes, array.offset + start * row_bytes
        )
    if len(data) != (stop - start) * row_bytes:
        raise ExportError(f"{array.filename} is shorter than its header says (damaged index)")
    return np.frombuffer(data, dtype=array.dtype).reshape(stop - start, array.shape[1])


def _format_lines(columns: Iterator[tuple[str, int, str, str]], fmt: str) -> str:
    # NCT ids are validated ([A-Z0-9]) and scores are numbers: nothing needs quoting or
    # escaping. f-strings, as they are 2.5x faster than str.format here.
    if fmt == "csv":
        return "".join([f"{q},{r},{rel},{s}\n" for q, r, rel, s in columns])
    return "".join(
        [
            f'{{"query_id": "{q}", "rank": {r}, "related_id": "{rel}", "score": {s}}}\n'
            for q, r, rel, s in columns
        ]
    )
