"""Records streamed to disk as they are read, so a build holds none of them in memory.

A registry download is read in its own order, a trial may come twice (a later source
replaces an earlier copy), and an index stores its records sorted by NCT id.
:func:`spool_records` writes each record as one JSON line the moment it is read,
keeping only its id and byte range; once the sources are read it copies the kept
lines, sorted, into the index's record file without decoding them again. What stays
in memory is one small tuple per trial, whatever the size of the registry.
"""

from __future__ import annotations

import mmap
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from recommender.records import TrialRecord
from recommender.store import RECORDS_FILE, RECORDS_OFFSETS_FILE, RecordStore, encode_record

# Lines in read order, before sorting; removed once the sorted file is written.
UNSORTED_FILE = "records.unsorted.jsonl"


def spool_records(records: Iterable[TrialRecord], folder: Path) -> tuple[RecordStore, int]:
    """Write ``records`` into ``folder`` as the index's sorted record files.

    Parameters
    ----------
    records : iterable of TrialRecord
        In read order; of several records with one NCT id, the last is kept.
    folder : Path
        An existing folder; :data:`RECORDS_FILE` and :data:`RECORDS_OFFSETS_FILE` are
        written into it.

    Returns
    -------
    store : RecordStore
        The kept records, sorted by NCT id, read from disk on access.
    replaced : int
        Records that a later one with the same id replaced.
    """
    unsorted = folder / UNSORTED_FILE
    spans: dict[str, tuple[int, int]] = {}
    replaced = 0
    with open(unsorted, "wb") as out:
        for record in records:
            start = out.tell()
            out.write(encode_record(record))
            if record.nct_id in spans:
                replaced += 1
            spans[record.nct_id] = (start, out.tell())
    try:
        _write_sorted(unsorted, spans, folder)
    finally:
        unsorted.unlink()
    return RecordStore(folder / RECORDS_FILE, folder / RECORDS_OFFSETS_FILE), replaced


def _write_sorted(unsorted: Path, spans: dict[str, tuple[int, int]], folder: Path) -> None:
    offsets = np.zeros(len(spans) + 1, dtype=np.int64)
    with open(unsorted, "rb") as source, open(folder / RECORDS_FILE, "wb") as out:
        if source.seek(0, 2):  # mmap of an empty file is an error; no records is not
            with mmap.mmap(source.fileno(), 0, access=mmap.ACCESS_READ) as lines:
                for i, nct_id in enumerate(sorted(spans)):
                    start, stop = spans[nct_id]
                    out.write(lines[start:stop])
                    offsets[i + 1] = offsets[i] + (stop - start)
    np.save(folder / RECORDS_OFFSETS_FILE, offsets, allow_pickle=False)
