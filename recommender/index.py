"""The on-disk index: a folder of arrays and JSON, saved atomically, verified on load.

Layout of one version (format version 3; version 2 is read too)::

    meta.json                  format, build parameters, sources, counts, file hashes
    ids.npy                    (n,) <U11      NCT ids, sorted
    vectors.{indptr,indices,data}.npy          CSR (n, n_features) float32, pivot-normalised rows
    postings.{indptr,indices,data}.npy         CSR (n_features, n) float32, = vectors.T
    neighbours.indices.npy     (n, k) int32   precomputed top-k, -1 padded
    neighbours.scores.npy      (n, k) float32
    vocabulary.json            {group: [term, ...]} in column order
    idf.npy                    (n_features,) float32
    facet.{status,study_type,phase}.npy        (n,) uint32 codes (labels in meta.json)
    records.jsonl, records.offsets.npy         the records, for display
    records.<s>.jsonl, records.spans.npy       after an update: records added since
                                               (see :mod:`recommender.record_segments`)
    build_report.json          what was read, skipped (with reasons) and replaced

Which files an index must have is defined by the format
(:mod:`recommender.index_checks`), not by its ``meta.json``. Versions live in
folders behind the served path, a symlink swapped by one rename
(:mod:`recommender.versions`); a version's files are never written again.

No pickle anywhere: every array loads with ``allow_pickle=False`` and memory-mapped,
so several server workers share one copy in the page cache.
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
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import numpy as np
import scipy.sparse as sp

from recommender.facets import FACET_FIELDS, Facets
from recommender.faults import fault_point
from recommender.index_checks import (
    csr_problems,
    facet_problems,
    file_problems,
    ids_problems,
    neighbour_problems,
    record_segments,
    records_problems,
    vocabulary_problems,
)
from recommender.neighbours import NO_NEIGHBOUR, CosineNeighbours, transposed
from recommender.record_segments import (
    MAX_DEAD_SHARE,
    MAX_SEGMENTS,
    SPANS_FILE,
    SegmentedRecords,
    segment_file,
    segment_files,
    spans_of_offsets,
    spans_problems,
)
from recommender.records import TrialRecord, validate_nct_id
from recommender.store import RECORDS_FILE, RECORDS_OFFSETS_FILE, RecordStore, encode_record
from recommender.text import FieldGroupVectorizer
from recommender.updated_records import UpdatedRecords
from recommender.versions import (
    META_FILE,
    Staging,
    hold_version,
    resolve_index_folder,
)

FORMAT_NAME = "trial-recommender-index"
FORMAT_VERSION = 3
# Version 2 is version 3 without record segments: it reads as a one-segment index.
READABLE_VERSIONS = (2, 3)
_HASH_CHUNK = 1 << 22
_RECORDS_BATCH = 2048
_COPY_CHUNK = 8 << 20


class TrialIndexError(Exception):
    """Base class of the problems an index folder can have."""


class DamagedIndexError(TrialIndexError):
    """The folder is not a complete, intact index of a version this code reads."""


class NotInIndexError(KeyError, TrialIndexError):
    """The trial asked for is not in this index."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class Neighbour:
    """One recommended trial."""

    rank: int
    position: int
    nct_id: str
    score: float


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


# -- writing -------------------------------------------------------------------------


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
        as a new segment (see :mod:`recommender.record_segments`), unless the
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


class _SavedFields(msgspec.Struct):
    """What saving reads of a record besides its stored line: its id and facets."""

    nct_id: str
    phases: tuple[str, ...] = ()
    overall_status: str | None = None
    study_type: str | None = None


def _lines_on_disk(records: object) -> bool:
    """Records held as one lines file with offsets (a build's spool, a plain index)."""
    return isinstance(records, RecordStore) and not isinstance(records, SegmentedRecords)


def _lines_of(records: Sequence[TrialRecord]) -> Iterator[bytes]:
    """Each record's stored line; an update's kept records as the base stored them."""
    if isinstance(records, UpdatedRecords):
        return records.lines()
    return (encode_record(record) for record in records)


def _ids_and_facets(
    records: Sequence[TrialRecord], base: TrialIndex | None
) -> tuple[np.ndarray, Facets]:
    """The records' ids and facets, reading as little of them as can be."""
    if isinstance(records, UpdatedRecords) and base is not None and records.base is base.records:
        return records.ids, Facets.updated(base.facets, records.source, records.new)
    # Records on disk are read once, four fields of each, for the ids and the facets.
    fields = list(records.iter_fields(_SavedFields)) if _lines_on_disk(records) else records
    return np.asarray([r.nct_id for r in fields], dtype="<U11"), Facets.from_records(fields)


def _spans_of(records: RecordStore) -> np.ndarray:
    spans = getattr(records, "spans", None)
    return np.asarray(spans) if spans is not None else spans_of_offsets(records.offsets)


def save_index(
    folder: str | os.PathLike,
    *,
    records: Sequence[TrialRecord],
    vectorizer: FieldGroupVectorizer,
    vectors: sp.csr_matrix,
    neighbour_indices: np.ndarray,
    neighbour_scores: np.ndarray,
    meta: dict,
    report: dict | None = None,
    base: TrialIndex | None = None,
    base_rows: np.ndarray | None = None,
    postings: sp.csr_matrix | None = None,
) -> Path:
    """Write a complete index as a new version and serve it at ``folder`` atomically.

    The files are written into a temporary folder beside the versions of ``folder``
    (see :mod:`recommender.versions`), hashed as they are written, made read-only,
    named as a version and then swapped in by one rename: an interrupted save leaves
    the previous index served, and a killed one leaves a folder the next save
    removes.

    Parameters
    ----------
    folder : path
        The served path; its parent is created if needed.
    records : sequence of TrialRecord, length n
        Sorted by ``nct_id``, in the row order of ``vectors``.
    vectorizer : FieldGroupVectorizer
        Fitted; its vocabulary and IDF are stored.
    vectors : csr_matrix of shape (n, n_features), dtype float32
    neighbour_indices, neighbour_scores : ndarray of shape (n, k)
    meta : dict
        Build facts (sources, timings, ...) merged into ``meta.json``.
    report : dict, optional
        Stored as ``build_report.json``.
    base : TrialIndex, optional
        The index this one updates: parts equal to its own are hard-linked from it
        (see :class:`VersionWriter`).
    base_rows : ndarray of shape (n,), optional
        With ``base``: for each row, the row of ``base`` whose record it is unchanged,
        -1 for a new or changed record. Only those are written, as a new record
        segment; the base's record files are linked.
    postings : csr_matrix of shape (n_features, n), optional
        ``vectors.T`` as CSR, when the caller has made it already (an update
        searches with it); made here otherwise.

    Returns
    -------
    Path
        The served path.
    """
    final = Path(folder)
    with Staging(final) as staging:
        writer = VersionWriter(staging.folder, base)
        full_meta = _write_parts(
            writer, records, vectorizer, vectors, neighbour_indices, neighbour_scores, report,
            base_rows, postings,
        )  # fmt: skip
        full_meta.update(meta)
        full_meta["files"] = dict(sorted(writer.files.items()))
        full_meta["linked_from_previous"] = sorted(writer.linked)
        writer.json(META_FILE, full_meta)  # last: a folder with it is complete
        staging.publish()
    return final


def _write_parts(out: VersionWriter, records, vectorizer, vectors, neighbour_indices,
                 neighbour_scores, report, base_rows, postings):  # fmt: skip
    base = out.base
    same_vectors = base is not None and vectors is base.vectors
    if not same_vectors:
        vectors = sp.csr_matrix(vectors, dtype=np.float32)
    with ThreadPoolExecutor(max_workers=1) as helper:
        # scipy transposes without the GIL: while the records are coded and the
        # vectors written (0.4 s of the registry corpus's save).
        transposing = (
            None if same_vectors or postings is not None else helper.submit(transposed, vectors)
        )
        ids, facets = _ids_and_facets(records, base)
        if len(ids) and not np.all(ids[1:] > ids[:-1]):
            raise ValueError("records must be sorted by nct_id with no duplicates")
        if vectors.shape[0] != len(ids) or neighbour_indices.shape[0] != len(ids):
            raise ValueError("records, vectors and neighbours disagree on the number of trials")
        fault_point("write")
        out.array("ids", ids, base.ids if base is not None else None)
        out.csr("vectors", vectors, base.vectors if base is not None else None)
        base_postings = base.search.postings_ if same_vectors else None
        if same_vectors:  # linked, not written again
            postings = base_postings
        elif transposing is not None:
            postings = transposing.result()
        elif postings.shape != vectors.shape[::-1]:
            raise ValueError(f"postings of shape {postings.shape} for vectors of {vectors.shape}")
    out.csr("postings", postings, base_postings)
    out.array(
        "neighbours.indices",
        neighbour_indices.astype(np.int32, copy=False),
        base.neighbour_indices if base is not None else None,
    )
    out.array(
        "neighbours.scores",
        neighbour_scores.astype(np.float32, copy=False),
        base.neighbour_scores if base is not None else None,
    )
    params, vocabularies, idfs = vectorizer.get_state()
    same_vectorizer = base is not None and vectorizer is base.vectorizer
    out.json("vocabulary.json", vocabularies, reuse=same_vectorizer)
    idf = [idfs[g["name"]] for g in params["groups"]]
    idf = np.concatenate(idf) if idf else np.zeros(0, np.float32)
    out.array("idf", idf, idf if same_vectorizer else None)
    for name, column in facets.codes.items():
        base_column = base.facets.codes[name] if base is not None else None
        if base is not None and facets.labels[name] != base.facets.labels[name]:
            base_column = None  # same codes, other labels
        out.array(f"facet.{name}", column, base_column)
    n_segments = out.records(records, base_rows)
    out.json("build_report.json", report or {})
    fault_point("written")
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "vectorizer": params,
        "facets": dict(facets.labels),
        "counts": {
            "studies": len(ids),
            "features": int(vectors.shape[1]),
            "nonzeros": int(vectors.nnz),
            "k": int(neighbour_indices.shape[1]),
            "vocabulary": {name: len(terms) for name, terms in vocabularies.items()},
            "record_segments": n_segments,
        },
    }


# -- reading -------------------------------------------------------------------------


def read_meta(folder: str | os.PathLike) -> dict:
    """The parsed ``meta.json`` of an index folder, checked for format and version."""
    folder = Path(folder)
    path = folder / META_FILE
    if not folder.is_dir():
        raise DamagedIndexError(f"no index at {folder} (build one with `recommender build`)")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DamagedIndexError(f"{folder} is not an index: {META_FILE} is missing") from None
    except (OSError, ValueError) as exc:
        raise DamagedIndexError(f"{path} is unreadable: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise DamagedIndexError(f"{path} does not describe a {FORMAT_NAME}")
    if meta.get("format_version") not in READABLE_VERSIONS:
        raise DamagedIndexError(
            f"{folder} has index format version {meta.get('format_version')!r}; this code "
            f"reads version {FORMAT_VERSION}: rebuild it with `recommender build`"
        )
    return meta


def verify_index(folder: str | os.PathLike, *, hashes: bool = True) -> dict:
    """Check that the index has every file of its format, each of its recorded size
    and (``hashes``) SHA-256.

    ``folder`` may be a served path (a symlink to a version). Returns the metadata;
    raises :class:`DamagedIndexError` listing each problem.
    """
    folder = resolve_index_folder(folder)
    meta = read_meta(folder)
    problems = file_problems(folder, meta, hashes=hashes, sha256_file=sha256_file)
    _raise_if(problems, folder)
    return meta


def _raise_if(problems: list[str], folder: Path) -> None:
    if problems:
        raise DamagedIndexError(
            f"index at {folder} is damaged: " + "; ".join(problems) + " (rebuild it)"
        )


def _load_array(folder: Path, name: str, mmap: bool) -> np.ndarray:
    try:
        return np.load(folder / f"{name}.npy", mmap_mode="r" if mmap else None, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DamagedIndexError(f"{folder / name}.npy is unreadable: {exc}") from None


def _load_csr(folder: Path, name: str, shape: tuple[int, int], nnz: int) -> sp.csr_matrix:
    parts = {
        p: _load_array(folder, f"{name}.{p}", mmap=True) for p in ("indptr", "indices", "data")
    }
    _raise_if(csr_problems(name, parts, shape, nnz), folder)
    try:
        # The constructor's own checks are O(1) for these mmapped arrays bar indptr;
        # column indices are covered by the hash only (checking them reads every page).
        return sp.csr_matrix(
            (parts["data"], parts["indices"], parts["indptr"]), shape=shape, copy=False
        )
    except ValueError as exc:
        raise DamagedIndexError(f"{name} matrix in {folder} is inconsistent: {exc}") from None


class _ReportsDamage:
    """Turns a record that cannot be decoded into a :class:`DamagedIndexError`."""

    def __getitem__(self, position):
        try:
            return super().__getitem__(position)
        except (ValueError, msgspec.DecodeError) as exc:
            raise self._damaged(position, exc) from None

    def partial(self, position, decode):
        try:
            return super().partial(position, decode)
        except (ValueError, msgspec.DecodeError) as exc:
            raise self._damaged(position, exc) from None

    def __iter__(self) -> Iterator[TrialRecord]:
        try:
            yield from super().__iter__()
        except (ValueError, msgspec.DecodeError) as exc:
            raise self._damaged("in a run", exc) from None

    def _damaged(self, position, exc: Exception) -> DamagedIndexError:
        return DamagedIndexError(
            f"record {position} of the index at {self.lines_path.parent} cannot be read "
            f"({type(exc).__name__}: {exc}); the index is damaged: rebuild it"
        )


class IndexRecords(_ReportsDamage, RecordStore):
    """The records of a one-segment index."""


class SegmentedIndexRecords(_ReportsDamage, SegmentedRecords):
    """The records of an updated index, in several segments."""


def _open_records(folder: Path, meta: dict, n: int) -> RecordStore:
    """The records, after checking their offsets (and spans) against the files."""
    n_segments = record_segments(meta)
    offsets = _load_array(folder, RECORDS_OFFSETS_FILE.removesuffix(".npy"), mmap=True)
    size = (folder / RECORDS_FILE).stat().st_size
    m = n if n_segments == 1 else len(offsets) - 1  # rows of segment 0 only
    _raise_if(records_problems(offsets, m, size), folder)
    if n_segments == 1:
        return IndexRecords(folder / RECORDS_FILE, folder / RECORDS_OFFSETS_FILE)
    spans = _load_array(folder, SPANS_FILE.removesuffix(".npy"), mmap=True)
    sizes = [(folder / name).stat().st_size for name in segment_files(n_segments)]
    _raise_if(spans_problems(spans, n, sizes), folder)
    return SegmentedIndexRecords(folder, n_segments, spans, folder / RECORDS_OFFSETS_FILE)


class TrialIndex:
    """A loaded index: precomputed neighbours, on-the-fly search and explanations.

    Use :meth:`load`; the constructor takes already loaded parts.
    """

    def __init__(
        self,
        path: Path,
        meta: dict,
        ids: np.ndarray,
        vectors: sp.csr_matrix,
        search: CosineNeighbours,
        neighbour_indices: np.ndarray,
        neighbour_scores: np.ndarray,
        vectorizer: FieldGroupVectorizer,
        facets: Facets,
        records: RecordStore,
    ) -> None:
        self.path = path
        self.meta = meta
        self.ids = ids
        self.vectors = vectors
        self.search = search
        self.neighbour_indices = neighbour_indices
        self.neighbour_scores = neighbour_scores
        self.vectorizer = vectorizer
        self.facets = facets
        self.records = records
        self.feature_names = np.asarray(vectorizer.feature_names(), dtype=object)

    @classmethod
    def load(cls, folder: str | os.PathLike, *, verify: bool = True) -> TrialIndex:
        """Open the index served at ``folder``, memory-mapping its arrays.

        ``folder`` is resolved once (a symlink to a version, see
        :mod:`recommender.versions`): the object keeps reading that version however
        the served path changes later, and holds it open so that no writer removes it.

        Parameters
        ----------
        folder : path
        verify : bool, default True
            Check every file's SHA-256 first (reads the whole index once). Required
            files, sizes and the structural checks of :mod:`recommender.index_checks`
            are done either way.

        Raises
        ------
        DamagedIndexError
            Missing, truncated, altered or wrong-version index, with the reason.
        """
        resolved = resolve_index_folder(folder)
        # Held by the index (and any shallow copy of it) for as long as it lives.
        hold = hold_version(resolved)
        try:
            meta = verify_index(resolved, hashes=verify)
            index = cls._open(resolved, meta)
        except DamagedIndexError:
            hold.close()
            raise
        except (OSError, ValueError, KeyError, TypeError) as exc:
            hold.close()
            raise DamagedIndexError(f"index at {resolved} cannot be opened: {exc}") from None
        index._hold = hold
        return index

    @classmethod
    def _open(cls, folder: Path, meta: dict) -> TrialIndex:
        counts = meta["counts"]
        n, d, k = counts["studies"], counts["features"], counts["k"]
        ids = _load_array(folder, "ids", mmap=False)
        _raise_if(ids_problems(ids, n), folder)
        vectors = _load_csr(folder, "vectors", (n, d), counts["nonzeros"])
        postings = _load_csr(folder, "postings", (d, n), counts["nonzeros"])
        vocabularies = json.loads((folder / "vocabulary.json").read_text(encoding="utf-8"))
        idf = _load_array(folder, "idf", mmap=False)
        _raise_if(vocabulary_problems(vocabularies, meta["vectorizer"]["groups"], idf, d), folder)
        vectorizer = _vectorizer_from_parts(meta["vectorizer"], vocabularies, idf)
        facet_codes = {f: _load_array(folder, f"facet.{f}", mmap=False) for f in FACET_FIELDS}
        _raise_if(facet_problems(facet_codes, meta["facets"], n), folder)
        neighbour_indices = _load_array(folder, "neighbours.indices", mmap=True)
        neighbour_scores = _load_array(folder, "neighbours.scores", mmap=True)
        _raise_if(neighbour_problems(neighbour_indices, neighbour_scores, n, k), folder)
        records = _open_records(folder, meta, n)
        if vectorizer.n_features_ != d:
            raise DamagedIndexError(f"index at {folder}: array shapes disagree with {META_FILE}")
        return cls(
            path=folder,
            meta=meta,
            ids=ids,
            vectors=vectors,
            search=CosineNeighbours().set_postings(postings),
            neighbour_indices=neighbour_indices,
            neighbour_scores=neighbour_scores,
            vectorizer=vectorizer,
            facets=Facets(labels=meta["facets"], codes=facet_codes),
            records=records,
        )

    # -- lookups ---------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, nct_id: object) -> bool:
        try:
            self.position(nct_id)
        except (NotInIndexError, ValueError):
            return False
        return True

    @property
    def built_at(self) -> str:
        return self.meta.get("built_at", "")

    def position(self, nct_id: object) -> int:
        """Row of ``nct_id``; raises ``InvalidNctIdError`` or :class:`NotInIndexError`."""
        nct_id = validate_nct_id(nct_id)
        pos = int(np.searchsorted(self.ids, nct_id))
        if pos >= len(self.ids) or self.ids[pos] != nct_id:
            raise NotInIndexError(
                f"{nct_id} is not in this index (built from {len(self):,} studies on "
                f"{self.built_at[:10] or 'an unknown date'})"
            )
        return pos

    def record(self, nct_id: str) -> TrialRecord:
        return self.records[self.position(nct_id)]

    # -- recommendations -------------------------------------------------------------

    def similar(
        self, nct_id: str, k: int = 5, *, allowed: np.ndarray | None = None
    ) -> list[Neighbour]:
        """The ``k`` trials most like an indexed trial, never the trial itself.

        A lookup in the precomputed lists when they hold enough (after ``allowed``,
        a boolean filter over trials, is applied); otherwise an exact search.
        """
        pos = self.position(nct_id)
        stored_ids = np.asarray(self.neighbour_indices[pos])
        stored_scores = np.asarray(self.neighbour_scores[pos])
        keep = stored_ids != NO_NEIGHBOUR
        if allowed is not None:
            keep &= allowed[np.maximum(stored_ids, 0)]
        ids, scores = stored_ids[keep], stored_scores[keep]
        list_complete = stored_ids[-1] == NO_NEIGHBOUR  # fewer positive scores than k
        if len(ids) < k and not list_complete:
            found, found_scores = self.search.kneighbors(
                self.vectors[pos], k, exclude=np.array([pos]), allowed=allowed
            )
            ids, scores = found[0], found_scores[0]
        return self._neighbours(ids[:k], scores[:k])

    def similar_to_vector(
        self, query: sp.csr_matrix, k: int = 5, *, allowed: np.ndarray | None = None
    ) -> list[Neighbour]:
        """The ``k`` indexed trials closest to a vector from :meth:`vectorize`."""
        found, scores = self.search.kneighbors(query, k, allowed=allowed)
        return self._neighbours(found[0], scores[0])

    def vectorize(self, record: TrialRecord, text: str | None = None) -> sp.csr_matrix:
        """The (1, n_features) vector of a trial that need not be indexed.

        ``text`` is free text about it (a draft's description), read in the free-text
        group (see :meth:`FieldGroupVectorizer.transform`).
        """
        return self.vectorizer.transform([record], None if text is None else [text])

    def _neighbours(self, ids: np.ndarray, scores: np.ndarray) -> list[Neighbour]:
        return [
            Neighbour(rank=r + 1, position=int(i), nct_id=str(self.ids[i]), score=float(s))
            for r, (i, s) in enumerate(zip(ids, scores, strict=True))
            if i != NO_NEIGHBOUR
        ]

    def explain(
        self, query: sp.csr_matrix, position: int, *, n_terms: int = 3
    ) -> list[dict[str, object]]:
        """Which field groups and terms made up the score of one result.

        Parameters
        ----------
        query : csr_matrix of shape (1, n_features)
            The query's vector (``self.vectors[pos]`` for an indexed trial).
        position : int
            Row of the recommended trial.
        n_terms : int, default 3
            Terms listed per field group.

        Returns
        -------
        list of dict
            ``{"field", "score", "terms"}`` per contributing group, largest first;
            the ``score`` values add up to the score.
        """
        query = sp.csr_matrix(query)
        # Slicing the arrays directly: a scipy row slice costs more than the rest.
        V = self.vectors
        start, stop = V.indptr[position], V.indptr[position + 1]
        row_indices, row_data = V.indices[start:stop], V.data[start:stop]
        shared, q_at, r_at = np.intersect1d(
            query.indices, row_indices, assume_unique=True, return_indices=True
        )
        contribution = query.data[q_at] * row_data[r_at]
        groups = self.vectorizer.group_of_column(shared)
        explained = []
        for g in np.unique(groups):
            mine = groups == g
            order = np.argsort(-contribution[mine], kind="stable")[:n_terms]
            explained.append(
                {
                    "field": self.vectorizer.groups[g].name,
                    "score": float(contribution[mine].sum()),
                    "terms": self.feature_names[shared[mine][order]].tolist(),
                }
            )
        explained.sort(key=lambda e: -e["score"])
        return explained


def _vectorizer_from_parts(params: dict, vocabularies: dict, idf: np.ndarray):
    idfs, start = {}, 0
    for group in params["groups"]:
        size = len(vocabularies[group["name"]])
        idfs[group["name"]] = idf[start : start + size]
        start += size
    if start != len(idf):
        raise DamagedIndexError(f"vocabulary has {start} terms but idf.npy has {len(idf)}")
    return FieldGroupVectorizer.from_state(params, vocabularies, idfs)


def describe_source(path: str | os.PathLike) -> dict:
    """Path, size and SHA-256 of a source file or folder (a folder hashes its files'
    names and hashes in sorted order), recorded in the index metadata."""
    path = Path(path)
    if path.is_file():
        return {"path": str(path), "bytes": path.stat().st_size, "sha256": sha256_file(path)}
    digest, total = hashlib.sha256(), 0
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(f"{file.relative_to(path)}\0{sha256_file(file)}\n".encode())
        total += file.stat().st_size
    return {"path": str(path), "bytes": total, "sha256": digest.hexdigest()}


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
