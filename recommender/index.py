"""The on-disk index: a folder of arrays and JSON, saved atomically, verified on load.

Layout (format version 2)::

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
    build_report.json          what was read, skipped (with reasons) and replaced

No pickle anywhere: every array loads with ``allow_pickle=False`` and memory-mapped,
so several server workers share one copy in the page cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from recommender.facets import FACET_FIELDS, Facets
from recommender.neighbours import NO_NEIGHBOUR, CosineNeighbours
from recommender.records import TrialRecord, validate_nct_id
from recommender.store import RecordStore, write_records
from recommender.text import FieldGroupVectorizer

FORMAT_NAME = "trial-recommender-index"
FORMAT_VERSION = 2
META_FILE = "meta.json"
_HASH_CHUNK = 1 << 22


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


def _save_array(folder: Path, name: str, array: np.ndarray) -> None:
    np.save(folder / f"{name}.npy", np.ascontiguousarray(array), allow_pickle=False)


def _save_csr(folder: Path, name: str, matrix: sp.csr_matrix) -> None:
    for part in ("indptr", "indices", "data"):
        _save_array(folder, f"{name}.{part}", getattr(matrix, part))


def _write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


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
) -> Path:
    """Write a complete index to ``folder``, replacing any index there atomically.

    Everything is written into a temporary sibling folder first, hashed, and only
    then renamed into place: an interrupted save leaves the previous index intact.

    Parameters
    ----------
    folder : path
        Destination; its parent is created if needed.
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

    Returns
    -------
    Path
        The final folder.
    """
    final = Path(folder)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.tmp-{os.getpid()}-{time.time_ns()}"
    tmp.mkdir()
    try:
        full_meta = _write_parts(
            tmp, records, vectorizer, vectors, neighbour_indices, neighbour_scores, report
        )
        full_meta.update(meta)
        full_meta["files"] = {
            p.name: {"bytes": p.stat().st_size, "sha256": sha256_file(p)}
            for p in sorted(tmp.iterdir())
        }
        _write_json(tmp / META_FILE, full_meta)
        _swap_into_place(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _write_parts(tmp, records, vectorizer, vectors, neighbour_indices, neighbour_scores, report):
    ids = np.asarray([r.nct_id for r in records], dtype="<U11")
    if len(ids) and not np.all(ids[1:] > ids[:-1]):
        raise ValueError("records must be sorted by nct_id with no duplicates")
    vectors = sp.csr_matrix(vectors, dtype=np.float32)
    if vectors.shape[0] != len(ids) or neighbour_indices.shape[0] != len(ids):
        raise ValueError("records, vectors and neighbours disagree on the number of trials")
    _save_array(tmp, "ids", ids)
    _save_csr(tmp, "vectors", vectors)
    _save_csr(tmp, "postings", vectors.T.tocsr())
    _save_array(tmp, "neighbours.indices", neighbour_indices.astype(np.int32))
    _save_array(tmp, "neighbours.scores", neighbour_scores.astype(np.float32))
    params, vocabularies, idfs = vectorizer.get_state()
    _write_json(tmp / "vocabulary.json", vocabularies)
    idf = [idfs[g["name"]] for g in params["groups"]]
    _save_array(tmp, "idf", np.concatenate(idf) if idf else np.zeros(0, np.float32))
    facets = Facets.from_records(records)
    for name, column in facets.codes.items():
        _save_array(tmp, f"facet.{name}", column)
    write_records(records, tmp / "records.jsonl", tmp / "records.offsets.npy")
    _write_json(tmp / "build_report.json", report or {})
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
        },
    }


def _swap_into_place(tmp: Path, final: Path) -> None:
    if not final.exists():
        os.replace(tmp, final)
        return
    if not (final / META_FILE).exists() and any(final.iterdir()):
        raise FileExistsError(f"{final} exists and is not an index; refusing to replace it")
    old = final.parent / f".{final.name}.old-{os.getpid()}-{time.time_ns()}"
    os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


# -- reading -------------------------------------------------------------------------


def read_meta(folder: str | os.PathLike) -> dict:
    """The parsed ``meta.json`` of an index, checked for format and version."""
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
    if meta.get("format_version") != FORMAT_VERSION:
        raise DamagedIndexError(
            f"{folder} has index format version {meta.get('format_version')!r}; this code "
            f"reads version {FORMAT_VERSION}: rebuild it with `recommender build`"
        )
    return meta


def verify_index(folder: str | os.PathLike) -> dict:
    """Check every file of the index against the sizes and hashes in its metadata.

    Returns the metadata; raises :class:`DamagedIndexError` listing each problem.
    """
    folder = Path(folder)
    meta = read_meta(folder)
    problems = []
    for name, expected in meta.get("files", {}).items():
        path = folder / name
        if not path.is_file():
            problems.append(f"{name} is missing")
        elif path.stat().st_size != expected["bytes"]:
            problems.append(f"{name} has {path.stat().st_size} bytes, expected {expected['bytes']}")
        elif sha256_file(path) != expected["sha256"]:
            problems.append(f"{name} does not match its recorded SHA-256")
    if not meta.get("files"):
        problems.append(f"{META_FILE} lists no files")
    if problems:
        raise DamagedIndexError(
            f"index at {folder} is damaged: " + "; ".join(problems) + " (rebuild it)"
        )
    return meta


def _load_array(folder: Path, name: str, mmap: bool) -> np.ndarray:
    try:
        return np.load(folder / f"{name}.npy", mmap_mode="r" if mmap else None, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DamagedIndexError(f"{folder / name}.npy is unreadable: {exc}") from None


def _load_csr(folder: Path, name: str, shape: tuple[int, int], mmap: bool) -> sp.csr_matrix:
    parts = [_load_array(folder, f"{name}.{p}", mmap) for p in ("data", "indices", "indptr")]
    try:
        # The constructor's validation is O(1) for mmapped arrays bar indptr checks;
        # full structural checks would read every page, which verify_index already did.
        return sp.csr_matrix(tuple(parts), shape=shape, copy=False)
    except ValueError as exc:
        raise DamagedIndexError(f"{name} matrix in {folder} is inconsistent: {exc}") from None


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
        """Open the index in ``folder``, memory-mapping its arrays.

        Parameters
        ----------
        folder : path
        verify : bool, default True
            Check every file's size and SHA-256 first (reads the whole index once).

        Raises
        ------
        DamagedIndexError
            Missing, truncated, altered or wrong-version index, with the reason.
        """
        folder = Path(folder)
        meta = verify_index(folder) if verify else read_meta(folder)
        try:
            return cls._open(folder, meta)
        except DamagedIndexError:
            raise
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DamagedIndexError(f"index at {folder} cannot be opened: {exc}") from None

    @classmethod
    def _open(cls, folder: Path, meta: dict) -> TrialIndex:
        counts = meta["counts"]
        n, d = counts["studies"], counts["features"]
        ids = _load_array(folder, "ids", mmap=False)
        vectors = _load_csr(folder, "vectors", (n, d), mmap=True)
        postings = _load_csr(folder, "postings", (d, n), mmap=True)
        vocabularies = json.loads((folder / "vocabulary.json").read_text(encoding="utf-8"))
        idf = _load_array(folder, "idf", mmap=False)
        vectorizer = _vectorizer_from_parts(meta["vectorizer"], vocabularies, idf)
        facet_codes = {f: _load_array(folder, f"facet.{f}", mmap=False) for f in FACET_FIELDS}
        neighbour_indices = _load_array(folder, "neighbours.indices", mmap=True)
        neighbour_scores = _load_array(folder, "neighbours.scores", mmap=True)
        if ids.shape != (n,) or neighbour_indices.shape[0] != n or vectorizer.n_features_ != d:
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
            records=RecordStore(folder / "records.jsonl", folder / "records.offsets.npy"),
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
