"""Records streamed to disk as they are read, so a build holds none of them in memory.

A registry download is read in its own order, a trial may come twice (a later source
replaces an earlier copy), and an index stores its records sorted by NCT id.
:func:`spool_records` writes each record as one JSON line the moment it is read
(or takes the place where a reading process wrote it), keeping only its id, file and
byte range; once the sources are read it copies the kept lines, sorted, into the
index's record file without decoding them again. What stays in memory is one small
tuple per trial, whatever the size of the registry.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

import numpy as np

from recommender.core import (
    RECORDS_FILE,
    RECORDS_OFFSETS_FILE,
    RecordLine,
    RecordStore,
    TrialRecord,
    encode_record,
)

# Lines in read order, before sorting; removed once the sorted file is written.
UNSORTED_FILE = "records.unsorted.jsonl"
# Largest single read when copying lines into sorted order.
_COPY_BYTES = 8 << 20


def spool_records(
    records: Iterable[TrialRecord | RecordLine], folder: Path
) -> tuple[RecordStore, int]:
    """Write ``records`` into ``folder`` as the index's sorted record files.

    Parameters
    ----------
    records : iterable of TrialRecord or RecordLine
        In read order; of several records with one NCT id, the last is kept. A
        RecordLine is a line already written by a reading process (to a file in
        ``folder``, which is removed once its lines are copied).
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
    files = [folder / UNSORTED_FILE]  # where the lines are; 0 is written here
    file_number: dict[str, int] = {}
    spans: dict[str, tuple[int, int, int]] = {}
    replaced = 0
    try:
        with open(files[0], "wb") as out:
            for record in records:
                if isinstance(record, RecordLine):
                    number = file_number.get(record.path)
                    if number is None:
                        number = file_number[record.path] = len(files)
                        files.append(Path(record.path))
                    span = (number, record.start, record.stop)
                else:
                    start = out.tell()
                    out.write(encode_record(record))
                    span = (0, start, out.tell())
                if record.nct_id in spans:
                    replaced += 1
                spans[record.nct_id] = span
        _write_sorted(files, spans, folder)
    finally:
        for file in files:
            file.unlink(missing_ok=True)
    # Read-only from here on: an index saved from these records may link the file.
    os.chmod(folder / RECORDS_FILE, 0o444)
    return RecordStore(folder / RECORDS_FILE, folder / RECORDS_OFFSETS_FILE), replaced


def _write_sorted(files: list[Path], spans: dict[str, tuple[int, int, int]], folder: Path) -> None:
    # Lines are copied a stretch of consecutive lines at a time (a registry download is
    # mostly in id order already), not through a map of the unsorted files: mapped
    # pages count as the process's memory, the whole file's worth by the end.
    offsets = np.zeros(len(spans) + 1, dtype=np.int64)
    with contextlib.ExitStack() as stack, open(folder / RECORDS_FILE, "wb") as out:
        fds = [stack.enter_context(open(file, "rb")).fileno() for file in files]
        run_file = run_start = run_stop = 0
        for i, nct_id in enumerate(sorted(spans)):
            file, start, stop = spans[nct_id]
            if (file, start) != (run_file, run_stop):
                copy_bytes(fds[run_file], run_start, run_stop, out)
                run_file, run_start = file, start
            run_stop = stop
            offsets[i + 1] = offsets[i] + (stop - start)
        copy_bytes(fds[run_file], run_start, run_stop, out)
    np.save(folder / RECORDS_OFFSETS_FILE, offsets, allow_pickle=False)


def copy_bytes(fd: int, start: int, stop: int, out: BinaryIO) -> None:
    """Bytes ``start:stop`` of the file open as ``fd`` appended to ``out``.

    In the kernel where it can (``copy_file_range``: no bytes pass through this
    process, ten times faster than reading and writing them on this project's
    machine), else in bounded reads.
    """
    out.flush()
    kernel_copy = getattr(os, "copy_file_range", None)
    while kernel_copy is not None and start < stop:
        try:
            copied = kernel_copy(fd, out.fileno(), stop - start, start)
        except OSError:  # not between these files (another file system, say)
            break
        if not copied:
            raise OSError(f"{stop - start} bytes missing from the file being copied")
        start += copied
    while start < stop:
        chunk = os.pread(fd, min(stop - start, _COPY_BYTES), start)
        if not chunk:
            raise OSError(f"{stop - start} bytes missing from the file being copied")
        out.write(chunk)
        start += len(chunk)
