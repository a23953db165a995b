"""Records on disk: one JSON line per trial, found by a memory-mapped offset table.

The service needs any one record by position (to show titles and facts of results)
without holding 100k+ records, descriptions and all, in every worker's memory.
"""

from __future__ import annotations

import itertools
import mmap
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar, overload

import msgspec
import numpy as np

from recommender.core.records import TrialRecord

T = TypeVar("T")

RECORDS_FILE = "records.jsonl"
RECORDS_OFFSETS_FILE = "records.offsets.npy"

# msgspec reads and writes the dataclasses directly: the same JSON as
# ``json.dumps(record.to_dict())`` in a fifth of the time, which matters because a build
# reads every record back from disk (it never holds them all in memory).
# Records read per pread when iterating (a few MB).
_RUN_RECORDS = 2048
_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(TrialRecord)
_FieldsT = TypeVar("_FieldsT", bound=msgspec.Struct)


@dataclass(frozen=True, slots=True)
class RecordLine:
    """Where a record's JSON line (see :func:`encode_record`) was written: bytes
    ``start:stop`` of ``path``. What a build's reading processes hand over, having
    written the lines themselves, so that no record is sent, decoded or written
    again on its way to the spool."""

    nct_id: str
    path: str
    start: int
    stop: int


def encode_record(record: TrialRecord) -> bytes:
    """One record as a JSON line (UTF-8, newline-terminated)."""
    return _ENCODER.encode(record) + b"\n"


def decode_record(line: bytes) -> TrialRecord:
    """Inverse of :func:`encode_record`; ``msgspec.ValidationError`` if not a record."""
    return _DECODER.decode(line)


def write_records(records: Iterable[TrialRecord], lines_path: Path, offsets_path: Path) -> int:
    """Write ``records`` as JSON lines and their byte offsets; return how many.

    The offsets file holds ``n_records + 1`` int64 values: line ``i`` spans
    ``offsets[i]:offsets[i + 1]``.
    """
    offsets = [0]
    with open(lines_path, "wb") as out:
        for record in records:
            out.write(encode_record(record))
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
        self.lines_path, self.offsets_path = Path(lines_path), Path(offsets_path)
        self.offsets = np.load(offsets_path, mmap_mode="r", allow_pickle=False)
        # The same mapped memory as a plain array: indexing a np.memmap wraps each
        # result in a new memmap object, several times the cost of the read itself.
        self._bounds = np.asarray(self.offsets)
        with open(lines_path, "rb") as handle:
            size = handle.seek(0, 2)
            # mmap of an empty file is an error; an index of zero records is not.
            self._map = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
        if len(self.offsets) < 1 or int(self.offsets[-1]) != size:
            raise ValueError(f"{offsets_path.name} does not match {lines_path.name}")

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @overload
    def __getitem__(self, position: int) -> TrialRecord: ...

    @overload
    def __getitem__(self, position: slice) -> list[TrialRecord]: ...

    def __getitem__(self, position):
        if isinstance(position, slice):
            start, stop, step = position.indices(len(self))
            if step == 1:
                return self._read_run(start, stop)
            return [self[i] for i in range(start, stop, step)]
        return self.partial(position, decode_record)

    def partial(self, position: int, decode: Callable[[bytes], T]) -> T:
        """Record ``position`` read from its stored line by ``decode``: a decoder of a
        few fields (for display) skips the rest of the line."""
        return decode(self.line(position))

    def line(self, position: int) -> bytes:
        """The stored JSON line of record ``position``, undecoded (for partial decoding)."""
        if not 0 <= position < len(self):
            raise IndexError(f"record {position} out of range 0..{len(self) - 1}")
        start, stop = self._bounds[position : position + 2].tolist()
        return self._map[start:stop]

    def __iter__(self) -> Iterator[TrialRecord]:
        for start in range(0, len(self), _RUN_RECORDS):
            yield from self._read_run(start, min(start + _RUN_RECORDS, len(self)))

    def iter_fields(
        self, fields: type[_FieldsT], start: int = 0, stop: int | None = None
    ) -> Iterator[_FieldsT]:
        """Records ``start:stop`` (all by default) decoded as ``fields``, a msgspec
        Struct of some of their fields.

        For a pass that reads a few fields: the rest of each line is skipped unbuilt,
        several times faster than decoding whole records.
        """
        decoder = msgspec.json.Decoder(fields)
        stop = len(self) if stop is None else min(stop, len(self))
        for first in range(start, stop, _RUN_RECORDS):
            run, bounds = self._read_lines(first, min(first + _RUN_RECORDS, stop))
            yield from (decoder.decode(run[a:b]) for a, b in itertools.pairwise(bounds))

    def _read_run(self, start: int, stop: int) -> list[TrialRecord]:
        # A run of records is read with one pread rather than through the map: a build
        # passes over every record several times, and pages touched through a map count
        # as the process's memory until the kernel reclaims them (gigabytes at scale).
        if stop <= start:
            return []
        run, bounds = self._read_lines(start, stop)
        return [decode_record(run[a:b]) for a, b in itertools.pairwise(bounds)]

    def _read_lines(self, start: int, stop: int) -> tuple[bytes, list[int]]:
        """Lines ``start:stop`` in one read, and where each begins and ends in it."""
        offsets = np.asarray(self.offsets[start : stop + 1], dtype=np.int64)
        with open(self.lines_path, "rb") as handle:
            run = os.pread(handle.fileno(), int(offsets[-1] - offsets[0]), int(offsets[0]))
        return run, (offsets - offsets[0]).tolist()
