"""Records of an updated index: the base file plus segments that updates append.

A full build writes ``records.jsonl`` and ``records.offsets.npy`` (see
:mod:`recommender.core.store`): row ``i`` is the line at ``offsets[i]:offsets[i + 1]``.
An update must not rewrite hundreds of megabytes to change a thousand records, so
it hard-links those two files (and any earlier segments) from the version it
updates, writes only its new and changed records into one new segment file
``records.<s>.jsonl``, and a table saying where each row's line is::

    records.spans.npy   (n, 3) int64: segment, start, stop (byte range in that segment)

Segment 0 is ``records.jsonl``. The number of segments is ``meta["counts"]
["record_segments"]`` (1, and no spans table, for a full build); the files it implies
are required like every other file of the format. Lines that changed leave dead
bytes behind in older segments: when they pass :data:`MAX_DEAD_SHARE` of all record
bytes, or the segments :data:`MAX_SEGMENTS`, an update writes all records afresh as
one segment (as a build does).
"""

from __future__ import annotations

import mmap
from collections.abc import Iterator
from pathlib import Path

import msgspec
import numpy as np

from recommender.core import RECORDS_FILE, RecordStore, decode_record

SPANS_FILE = "records.spans.npy"
MAX_SEGMENTS = 16
MAX_DEAD_SHARE = 0.3


def segment_file(segment: int) -> str:
    """File name of record segment ``segment`` (0 is the build's ``records.jsonl``)."""
    return RECORDS_FILE if segment == 0 else f"records.{segment}.jsonl"


def segment_files(n_segments: int) -> list[str]:
    return [segment_file(s) for s in range(n_segments)]


def spans_of_offsets(offsets: np.ndarray) -> np.ndarray:
    """The (n, 3) spans of a single-segment index from its (n + 1,) offsets."""
    offsets = np.asarray(offsets, dtype=np.int64)
    spans = np.zeros((len(offsets) - 1, 3), dtype=np.int64)
    spans[:, 1], spans[:, 2] = offsets[:-1], offsets[1:]
    return spans


def spans_problems(spans: np.ndarray, n: int, sizes: list[int]) -> list[str]:
    """Each row names an existing segment and a byte range inside it."""
    if spans.shape != (n, 3) or spans.dtype.kind not in "iu":
        return [f"{SPANS_FILE} has shape {spans.shape}, expected ({n}, 3)"]
    if not n:
        return []
    segment, start, stop = (np.asarray(spans[:, j]) for j in range(3))
    if segment.min() < 0 or segment.max() >= len(sizes):
        return [f"{SPANS_FILE} names segments outside 0..{len(sizes) - 1}"]
    if start.min() < 0 or np.any(stop < start) or np.any(stop > np.asarray(sizes)[segment]):
        return [f"{SPANS_FILE} holds byte ranges outside their segment"]
    return []


class SegmentedRecords(RecordStore):
    """Records found through a spans table across segment files.

    Same interface as :class:`~recommender.core.store.RecordStore` (length, an int or a
    slice, iteration); segment 0 is opened by it and checked against its offsets.

    Parameters
    ----------
    folder : Path
        The index version folder.
    n_segments : int
    spans : ndarray of shape (n, 3)
    """

    def __init__(self, folder: Path, n_segments: int, spans: np.ndarray, offsets_path: Path):
        super().__init__(folder / RECORDS_FILE, offsets_path)
        self.spans = spans
        self._maps = [self._map]
        for name in segment_files(n_segments)[1:]:
            with open(folder / name, "rb") as handle:
                size = handle.seek(0, 2)
                self._maps.append(
                    mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
                )

    def __len__(self) -> int:
        return len(self.spans)

    def __getitem__(self, position):
        if isinstance(position, slice):
            return [self[i] for i in range(*position.indices(len(self)))]
        return self.partial(position, decode_record)

    def line(self, position: int) -> bytes:
        if not 0 <= position < len(self):
            raise IndexError(f"record {position} out of range 0..{len(self) - 1}")
        segment, start, stop = (int(v) for v in self.spans[position])
        return self._maps[segment][start:stop]

    def __iter__(self) -> Iterator:
        for i in range(len(self)):
            yield self[i]

    def iter_fields(self, fields: type, start: int = 0, stop: int | None = None) -> Iterator:
        # The base class reads runs of lines from segment 0 alone.
        decoder = msgspec.json.Decoder(fields)
        for i in range(*slice(start, stop).indices(len(self))):
            yield decoder.decode(self.line(i))
