"""Records on disk: one JSON line per trial, found by a memory-mapped offset table.

The service needs any one record by position (to show titles and facts of results)
without holding 100k+ records, descriptions and all, in every worker's memory.
"""

from __future__ import annotations

import json
import mmap
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from recommender.records import TrialRecord


def write_records(records: Iterable[TrialRecord], lines_path: Path, offsets_path: Path) -> int:
    """Write ``records`` as JSON lines and their byte offsets; return how many.

    The offsets file holds ``n_records + 1`` int64 values: line ``i`` spans
    ``offsets[i]:offsets[i + 1]``.
    """
    offsets = [0]
    with open(lines_path, "wb") as out:
        for record in records:
            line = json.dumps(record.to_dict(), ensure_ascii=False, separators=(",", ":"))
            out.write(line.encode("utf-8") + b"\n")
            offsets.append(out.tell())
    np.save(offsets_path, np.asarray(offsets, dtype=np.int64), allow_pickle=False)
    return len(offsets) - 1


class RecordStore:
    """Read-only random access to records written by :func:`write_records`.

    Parameters
    ----------
    lines_path, offsets_path : Path
        The two files :func:`write_records` wrote.
    """

    def __init__(self, lines_path: Path, offsets_path: Path) -> None:
        self.offsets = np.load(offsets_path, mmap_mode="r", allow_pickle=False)
        with open(lines_path, "rb") as handle:
            size = handle.seek(0, 2)
            # mmap of an empty file is an error; an index of zero records is not.
            self._map = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
        if len(self.offsets) < 1 or int(self.offsets[-1]) != size:
            raise ValueError(f"{offsets_path.name} does not match {lines_path.name}")

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, position: int) -> TrialRecord:
        if not 0 <= position < len(self):
            raise IndexError(f"record {position} out of range 0..{len(self) - 1}")
        start, stop = int(self.offsets[position]), int(self.offsets[position + 1])
        return TrialRecord.from_dict(json.loads(self._map[start:stop]))
