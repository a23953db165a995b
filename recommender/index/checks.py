"""What a complete index holds, and the cheap checks that a loaded one is whole.

The list of files comes from the format (:data:`REQUIRED_FILES`), never from the
index's own ``meta.json``: an entry removed from its file list does not excuse the
file. Each check returns a list of problems, in words, for one
:class:`~recommender.index.DamagedIndexError` naming them all.

The structural checks cost O(n) on the small arrays (ids, row pointers, record
offsets, facet codes) and O(n k) on the neighbour lists. Of the large arrays, the
columns of the vectors and the postings are range-checked (:func:`range_problems`,
in compiled code on every core: the kernels index with them, so one bad value would
be a read out of bounds); their values are checked by shape, type and SHA-256.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from recommender.core import FACET_FIELDS, RECORDS_FILE, RECORDS_OFFSETS_FILE
from recommender.index._checks_compiled import first_outside
from recommender.index.segments import SPANS_FILE, segment_files
from recommender.index.versions import META_FILE
from recommender.neighbours import NO_NEIGHBOUR

_CSR_PARTS = ("indptr", "indices", "data")
REQUIRED_FILES: tuple[str, ...] = (
    "ids.npy",
    *(f"vectors.{part}.npy" for part in _CSR_PARTS),
    *(f"postings.{part}.npy" for part in _CSR_PARTS),
    "neighbours.indices.npy",
    "neighbours.scores.npy",
    "vocabulary.json",
    "idf.npy",
    *(f"facet.{name}.npy" for name in FACET_FIELDS),
    RECORDS_FILE,
    RECORDS_OFFSETS_FILE,
    "build_report.json",
)


def record_segments(meta: Mapping) -> int:
    """Record segments of an index (1 for a full build; updates add segments)."""
    counts = meta.get("counts")
    value = counts.get("record_segments", 1) if isinstance(counts, Mapping) else 1
    return value if isinstance(value, int) and value >= 1 else 1


def required_files(meta: Mapping) -> list[str]:
    """Every file an index of this format must have; segments beyond the first, and
    their spans table, for an updated index (see :mod:`recommender.index.segments`)."""
    n_segments = record_segments(meta)
    extra = [SPANS_FILE, *segment_files(n_segments)[1:]] if n_segments > 1 else []
    return [*REQUIRED_FILES, *extra]


def file_problems(folder: Path, meta: Mapping, *, hashes: bool, sha256_file) -> list[str]:
    """Required files missing or unlisted, and listed files whose size or hash differ.

    Parameters
    ----------
    folder : Path
    meta : mapping
        The parsed ``meta.json``; its ``files`` maps names to ``bytes`` and ``sha256``.
    hashes : bool
        Also compare every file's SHA-256 (reads the whole index).
    sha256_file : callable
        Path to hex digest.
    """
    listed = meta.get("files")
    if not isinstance(listed, Mapping) or not listed:
        return [f"{META_FILE} lists no files"]
    unlisted = [name for name in required_files(meta) if name not in listed]
    problems = [f"{name} is not listed in {META_FILE}" for name in unlisted]
    to_hash = []
    for name, expected in listed.items():
        if not _plain_name(name) or not _entry_ok(expected):
            problems.append(f"{META_FILE} has a malformed entry for {name!r}")
            continue
        path = folder / name
        if not path.is_file():
            problems.append(f"{name} is missing")
        elif path.stat().st_size != expected["bytes"]:
            problems.append(f"{name} has {path.stat().st_size} bytes, expected {expected['bytes']}")
        elif hashes:
            to_hash.append((name, path, expected["sha256"]))
    # Side by side: hashlib lets go of the GIL, so a large index (gigabytes at 600k
    # trials) is checked at the speed of every core rather than one.
    workers = max(1, min(len(to_hash), os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        digests = list(pool.map(sha256_file, [path for _, path, _ in to_hash]))
    for (name, _, expected_hash), digest in zip(to_hash, digests, strict=True):
        if digest != expected_hash:
            problems.append(f"{name} does not match its recorded SHA-256")
    return problems


def _plain_name(name: object) -> bool:
    return isinstance(name, str) and name not in ("", ".", "..") and "/" not in name


def _entry_ok(entry: object) -> bool:
    return (
        isinstance(entry, Mapping)
        and isinstance(entry.get("bytes"), int)
        and isinstance(entry.get("sha256"), str)
    )


def csr_problems(name: str, parts: Mapping[str, np.ndarray], shape: tuple[int, int], nnz: int):
    """Row pointers of a CSR matrix: length, start, monotone, end; parts agree on nnz."""
    indptr, indices, data = (parts[p] for p in _CSR_PARTS)
    problems = []
    if indptr.ndim != 1 or indptr.shape[0] != shape[0] + 1:
        problems.append(f"{name}.indptr has shape {indptr.shape}, expected ({shape[0] + 1},)")
    elif indptr.dtype.kind not in "iu" or indices.dtype.kind not in "iu":
        problems.append(f"{name} row pointers or columns are not integers")
    elif indptr[0] != 0 or indptr[-1] != nnz or np.any(np.diff(indptr) < 0):
        problems.append(f"{name}.indptr is not a non-decreasing run from 0 to {nnz:,}")
    if indices.shape != (nnz,) or data.shape != (nnz,):
        problems.append(
            f"{name} has {indices.shape} columns and {data.shape} values, expected ({nnz},)"
        )
    if data.dtype != np.float32:
        problems.append(f"{name}.data is {data.dtype}, expected float32")
    return problems


# Entries each thread checks at a time: a few ms of memory reading, so that threads
# share a large array evenly and a small one costs one call.
RANGE_RUN = 1 << 22


def range_problems(file: str, values: np.ndarray, upper: int, what: str) -> list[str]:
    """The first of ``values`` outside ``[0, upper)``, as a problem naming ``file``.

    Parameters
    ----------
    file : str
        The file the values come from, for the message.
    values : ndarray of shape (m,), integer
        Column indices (of the vectors: terms; of the postings: trials), perhaps
        memory-mapped.
    upper : int
        The number of columns.
    what : str
        What a value names ("column", "row"), for the message.
    """
    values = np.asarray(values)  # a plain view of a memmap: what numba reads
    starts = range(0, len(values), RANGE_RUN)
    runs = [(a, min(a + RANGE_RUN, len(values))) for a in starts]
    if len(runs) > 1:
        workers = min(len(runs), os.cpu_count() or 1)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            found = list(pool.map(lambda run: first_outside(values, *run, upper), runs))
    else:
        found = [first_outside(values, *run, upper) for run in runs]
    bad = next((int(f) for f in found if f >= 0), -1)
    if bad < 0:
        return []
    return [f"{file} holds {what} {int(values[bad]):,} at position {bad:,}, outside [0, {upper:,})"]


def ids_problems(ids: np.ndarray, n: int) -> list[str]:
    if ids.shape != (n,) or ids.dtype.kind != "U":
        return [f"ids.npy has shape {ids.shape} and dtype {ids.dtype}, expected ({n},) strings"]
    if n > 1 and not np.all(ids[1:] > ids[:-1]):
        return ["ids.npy is not sorted without repeats"]
    return []


def neighbour_problems(indices: np.ndarray, scores: np.ndarray, n: int, k: int) -> list[str]:
    if indices.shape != (n, k) or scores.shape != (n, k):
        return [
            f"neighbour lists have shapes {indices.shape} and {scores.shape}, expected ({n}, {k})"
        ]
    if indices.dtype.kind not in "iu" or scores.dtype.kind != "f":
        return ["neighbour lists have the wrong types"]
    if indices.size and (indices.min() < NO_NEIGHBOUR or indices.max() >= n):
        return [f"neighbours.indices.npy holds rows outside [{NO_NEIGHBOUR}, {n})"]
    return []


def facet_problems(codes: Mapping[str, np.ndarray], labels: Mapping, n: int) -> list[str]:
    problems = []
    for name in FACET_FIELDS:
        column, names = codes[name], labels.get(name)
        if not isinstance(names, list):
            problems.append(f"{META_FILE} lacks the labels of facet {name}")
        elif column.shape != (n,) or column.dtype.kind not in "iu":
            problems.append(f"facet.{name}.npy has shape {column.shape}, expected ({n},)")
        elif n and int(column.max()) >= _code_limit(name, len(names)):
            problems.append(f"facet.{name}.npy holds codes beyond its {len(names)} labels")
    return problems


def _code_limit(facet: str, n_labels: int) -> int:
    # Phases are multi-valued: a bit mask over the label codes (see Facets).
    return 1 << n_labels if facet == "phase" else n_labels


def records_problems(offsets: np.ndarray, n: int, size: int) -> list[str]:
    """Record offsets: ``n + 1`` of them, from 0, non-decreasing, ending at the file's size."""
    if offsets.shape != (n + 1,) or offsets.dtype.kind not in "iu":
        return [f"records.offsets.npy has shape {offsets.shape}, expected ({n + 1},)"]
    if offsets[0] != 0 or offsets[-1] != size or np.any(np.diff(offsets) < 0):
        return [
            f"records.offsets.npy does not run, non-decreasing, from 0 to the {size:,} "
            "bytes of records.jsonl"
        ]
    return []


def vocabulary_problems(vocabularies: object, groups: list, idf: np.ndarray, d: int) -> list[str]:
    if not isinstance(vocabularies, Mapping):
        return ["vocabulary.json is not an object of term lists"]
    names = [g.get("name") for g in groups if isinstance(g, Mapping)]
    missing = [name for name in names if not isinstance(vocabularies.get(name), list)]
    if missing:
        return [f"vocabulary.json lacks the terms of {', '.join(map(str, missing))}"]
    size = sum(len(vocabularies[name]) for name in names)
    if idf.shape != (size,) or size != d:
        return [f"vocabulary has {size:,} terms, idf.npy {idf.shape}, the vectors {d:,} columns"]
    return []
