"""The files of one new version, written and hashed in one pass (:class:`VersionWriter`).

A part equal to the previous version's is hard-linked from it instead of written
again (an update links most of the index); the records are linked or copied from a
build's spool as they are, or appended as a new record segment.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import os
import stat
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from recommender.core import (
    RECORDS_FILE,
    RECORDS_OFFSETS_FILE,
    RecordStore,
    TrialRecord,
    encode_record,
)
from recommender.index.format import sha256_file
from recommender.index.loaded import TrialIndex
from recommender.index.segments import (
    MAX_DEAD_SHARE,
    MAX_SEGMENTS,
    SPANS_FILE,
    SegmentedRecords,
    segment_file,
    segment_files,
    spans_of_offsets,
)
from recommender.index.updated_records import UpdatedRecords

_RECORDS_BATCH = 2048

_COPY_CHUNK = 8 << 20


class _HashingFile:
    """A file open for writing that hashes and counts what goes through it.

    Each chunk is hashed in a background thread while the next one is produced and
    written (hashlib and file writes release the GIL), so the save costs hardly more
    than the writing, and nothing is read back to hash it.
    """

    def __init__(self, path: Path) -> None:
        self._file = open(path, "xb")  # noqa: SIM115 - closed by close()
        self._digest = hashlib.sha256()
        self._hashing: Future | None = None
        self.size = 0

    def write(self, data) -> int:
        data = bytes(data)  # hashed later: must not change meanwhile
        if self._hashing is not None:
            self._hashing.result()
        self._hashing = _background().submit(self._digest.update, data)
        self.size += len(data)
        return self._file.write(data)

    def close(self) -> dict:
        if self._hashing is not None:
            self._hashing.result()
        self._file.close()
        return {"bytes": self.size, "sha256": self._digest.hexdigest()}


@functools.cache
def _background() -> ThreadPoolExecutor:
    """A thread hashing what was written while the next part is produced."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="index-hasher")


# A forked child has the executor but not its thread: it must start its own.
os.register_at_fork(after_in_child=_background.cache_clear)


class VersionWriter:
    """Writes the files of a new index version, hashing them as they are written.

    Parameters
    ----------
    folder : Path
        The (temporary) folder of the new version.
    base : TrialIndex, optional
        The version it replaces. A part equal to the base's (the same array object,
        or equal contents when small) is hard-linked from it with the recorded hash,
        not written again; files that change are always new files, never the base's
        modified in place (a linked file is shared with the version being served).

    Attributes
    ----------
    files : dict
        Name to ``{"bytes", "sha256"}`` of every file in the folder.
    linked : list of str
        Names of the files linked from ``base``.
    """

    _COMPARE_BYTES = 64 << 20  # contents compared up to this size; identity beyond

    def __init__(self, folder: Path, base: TrialIndex | None = None) -> None:
        self.folder = folder
        self.base = base
        self.files: dict[str, dict] = {}
        self.linked: list[str] = []

    def array(self, name: str, array: np.ndarray, base: np.ndarray | None = None) -> None:
        """Write ``array`` as ``name.npy``, or link the base's file when ``base`` equals it."""
        filename = f"{name}.npy"
        if base is not None and self._same(array, base) and self.link(filename):
            return
        out = _HashingFile(self.folder / filename)
        try:
            np.lib.format.write_array(out, np.ascontiguousarray(array), allow_pickle=False)
        finally:
            self.files[filename] = out.close()

    def csr(self, name: str, matrix: sp.csr_matrix, base: sp.csr_matrix | None = None) -> None:
        for part in ("indptr", "indices", "data"):
            same = base is not None and (matrix is base)
            self.array(
                f"{name}.{part}", getattr(matrix, part), getattr(base, part) if same else None
            )

    def json(self, name: str, data: object, *, reuse: bool = False) -> None:
        """Write ``data`` as JSON; with ``reuse``, link the base's file of that name."""
        if reuse and self.link(name):
            return
        out = _HashingFile(self.folder / name)
        try:
            out.write((json.dumps(data, indent=1, ensure_ascii=False) + "\n").encode("utf-8"))
        finally:
            self.files[name] = out.close()

    def records(self, records: Sequence[TrialRecord], base_rows: np.ndarray | None = None) -> int:
        """Write the records; returns the number of record segments.

        With ``base_rows`` (per row, the base's row holding the same record, or -1)
        the base's record files are linked and only the other records are written,
        as a new segment (see :mod:`recommender.index.segments`), unless the
        segments would be too many or too wasteful: then all are written afresh.
        """
        if base_rows is not None and self.base is not None:
            n_segments = self._append_segment(records, base_rows)
            if n_segments:
                return n_segments
        if _lines_on_disk(records):
            # Lines a build spooled are already what this would write: link or copy them,
            # not re-encode.
            offsets = self._link_lines(RECORDS_FILE, records)
            if offsets is None:
                offsets = self._copy_lines(RECORDS_FILE, records)
        else:
            lengths = self._write_lines(RECORDS_FILE, _lines_of(records))
            offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
            np.cumsum(lengths, out=offsets[1:])
        self.array(RECORDS_OFFSETS_FILE.removesuffix(".npy"), offsets)
        return 1

    def _link_lines(self, filename: str, store: RecordStore) -> np.ndarray | None:
        """Hard-link a store's lines file when it is read-only (a build's spool, an
        index's version: nobody rewrites it in place) and holds exactly its lines;
        returns its offsets, or None to copy it instead. Saves writing the records again
        (380 MB for the registry corpus); the file is still hashed."""
        offsets = np.asarray(store.offsets, dtype=np.int64)
        try:
            status = store.lines_path.stat()
            if stat.S_IMODE(status.st_mode) & 0o222 or offsets[0] != 0:
                return None
            if status.st_size != offsets[-1]:
                return None
            os.link(store.lines_path, self.folder / filename)
        except OSError:  # another file system, or links not supported
            return None
        self.files[filename] = {
            "bytes": int(offsets[-1]),
            "sha256": sha256_file(self.folder / filename),
        }
        return offsets

    def _copy_lines(self, filename: str, store: RecordStore) -> np.ndarray:
        """Copy a store's lines file as it is; returns its offsets (from 0)."""
        offsets = np.asarray(store.offsets, dtype=np.int64)
        out = _HashingFile(self.folder / filename)
        try:
            with open(store.lines_path, "rb") as source:
                source.seek(int(offsets[0]))
                left = int(offsets[-1] - offsets[0])
                while left and (chunk := source.read(min(left, _COPY_CHUNK))):
                    out.write(chunk)
                    left -= len(chunk)
        finally:
            self.files[filename] = out.close()
        if left:
            raise ValueError(f"{store.lines_path} ended {left} bytes early")
        return offsets - offsets[0]

    def _write_lines(self, filename: str, lines: Iterable[bytes]) -> list[int]:
        lengths: list[int] = []
        out = _HashingFile(self.folder / filename)
        try:
            # Lines go out in batches: one write and one hash update per few MB.
            iterator = iter(lines)
            while batch := list(itertools.islice(iterator, _RECORDS_BATCH)):
                lengths.extend(map(len, batch))
                out.write(b"".join(batch))
        finally:
            self.files[filename] = out.close()
        return lengths

    def _append_segment(self, records: Sequence[TrialRecord], base_rows: np.ndarray) -> int:
        """Link the base's segments and add one; 0 when a full rewrite is due instead."""
        base, base_rows = self.base, np.asarray(base_rows, dtype=np.int64)
        old_segments = base.meta["counts"].get("record_segments", 1)
        if old_segments + 1 > MAX_SEGMENTS:
            return 0
        spans = np.empty((len(records), 3), dtype=np.int64)
        kept = base_rows >= 0
        spans[kept] = _spans_of(base.records)[base_rows[kept]]
        new_rows = np.flatnonzero(~kept)
        sizes = [base.meta["files"][name]["bytes"] for name in segment_files(old_segments)]
        new_bytes = sum(len(encode_record(records[i])) for i in new_rows)
        live = int((spans[kept, 2] - spans[kept, 1]).sum()) + new_bytes
        if 1 - live / max(sum(sizes) + new_bytes, 1) > MAX_DEAD_SHARE:
            return 0
        to_link = [*segment_files(old_segments), RECORDS_OFFSETS_FILE]
        if not all(self.link(name) for name in to_link):
            for name in set(to_link) & set(self.linked):  # undo, for the full rewrite
                (self.folder / name).unlink()
                self.files.pop(name)
                self.linked.remove(name)
            return 0
        lines = (encode_record(records[i]) for i in new_rows)
        lengths = self._write_lines(segment_file(old_segments), lines)
        ends = np.cumsum(lengths, dtype=np.int64)
        spans[new_rows, 0] = old_segments
        spans[new_rows, 1], spans[new_rows, 2] = ends - lengths, ends
        self.array(SPANS_FILE.removesuffix(".npy"), spans)
        return old_segments + 1

    def link(self, filename: str) -> bool:
        """Hard-link ``filename`` from the base version; False when that cannot be done."""
        entry = self.base.meta.get("files", {}).get(filename) if self.base else None
        if entry is None:
            return False
        try:
            os.link(self.base.path / filename, self.folder / filename)
        except OSError:  # another file system, or links not supported: write it
            return False
        self.files[filename] = dict(entry)
        self.linked.append(filename)
        return True

    def _same(self, array: np.ndarray, base: np.ndarray) -> bool:
        if array is base:
            return True
        if array.nbytes > self._COMPARE_BYTES:
            return False
        return array.dtype == base.dtype and np.array_equal(array, base)


def _lines_on_disk(records: object) -> bool:
    """Records held as one lines file with offsets (a build's spool, a plain index)."""
    return isinstance(records, RecordStore) and not isinstance(records, SegmentedRecords)


def _lines_of(records: Sequence[TrialRecord]) -> Iterator[bytes]:
    """Each record's stored line; an update's kept records as the base stored them."""
    if isinstance(records, UpdatedRecords):
        return records.lines()
    return (encode_record(record) for record in records)


def _spans_of(records: RecordStore) -> np.ndarray:
    spans = getattr(records, "spans", None)
    return np.asarray(spans) if spans is not None else spans_of_offsets(records.offsets)
