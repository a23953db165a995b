"""Reader of the ClinicalTrials.gov API v2 JSON documents and containers studies come in.

One study is ``{"protocolSection": {...}, "derivedSection": {...}}``, read by
:func:`~recommender.ingest.ctgov_json_study.parse_study`. Containers:

* the bulk-download zip ``ctg-studies.json.zip`` (one ``NCTxxxxxxxx.json`` per study),
* a folder of ``*.json`` files (searched recursively),
* a JSON-lines file (``.jsonl`` / ``.ndjson``, one study per line),
* a single ``.json`` file.

Every JSON document (file, member or line) may hold one study, an API response page
``{"studies": [...], "nextPageToken": ...}`` or a list of studies.

Readers never raise for a bad item: they yield ``(item, RecordError)`` so the caller
can skip and report it. Only a source that cannot be opened raises
:class:`~recommender.ingest.errors.SourceError`.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from os import PathLike
from pathlib import Path

from recommender.core import TrialRecord, encode_record
from recommender.ingest.api_v2 import decode_study
from recommender.ingest.containers import (
    list_files,
    named_as_study,
    open_zip,
    read_file,
    read_member,
    zip_members,
)
from recommender.ingest.ctgov_json_study import not_a_study, parse_study, plainly_not_a_study
from recommender.ingest.errors import (
    NotAStudyError,
    Outcome,
    RecordError,
    SourceError,
    not_unicode,
    one_line,
    unexpected,
)
from recommender.ingest.limits import DEFAULT_LIMITS, ReadLimits, size_refusal

JSON_SUFFIX = ".json"
#: Entries of one document (a list, a page) skipped one by one in the report; past
#: this many, the rest are counted in one more item. A 16 MiB file of ``[0,0,...]``
#: would otherwise be eight million skipped items held in memory and in the report.
MAX_SKIPS_LISTED = 100
JSONL_SUFFIXES = (".jsonl", ".ndjson")


# --- documents and containers ---------------------------------------------------------


def split_document(document: object, name: str) -> Iterator[tuple[str, object]]:
    """Split one decoded JSON document into ``(item name, candidate study)`` pairs.

    A list yields its entries (``name[3]``), an API page its ``studies`` entries
    (``name:studies[3]``), anything else is one candidate, which
    :func:`parse_study` accepts or rejects with a reason.
    """
    if isinstance(document, list):
        for index, entry in enumerate(document):
            yield f"{name}[{index}]", entry
    elif (
        isinstance(document, dict)
        and "protocolSection" not in document
        and isinstance(document.get("studies"), list)
    ):
        for index, entry in enumerate(document["studies"]):
            yield f"{name}:studies[{index}]", entry
    else:
        yield name, document


def parse_document(raw: bytes | str, name: str, *, whole_file: bool = False) -> Iterator[Outcome]:
    """Decode one JSON document and yield an outcome per study it holds.

    Parameters
    ----------
    raw
        The document's bytes (UTF-8, -16 or -32) or text.
    name
        How to name the document's items in the report (member, file, ``"line 17"``).
    whole_file
        The document is a whole file of a folder or zip: if it is plainly not a
        study (see :func:`plainly_not_a_study`) and not named like one, its outcome
        is a :class:`NotAStudyError`, which the report lists as ignored.

    Yields
    ------
    tuple of (str, TrialRecord or RecordError)
        Each item's name and its record, or why it is skipped; invalid JSON is one
        skipped item named ``name``.
    """
    # Most documents are one well-formed study: decoded straight into its record.
    record = decode_study(raw) if isinstance(raw, bytes) else None
    if record is not None:
        yield name, record
        return
    try:
        document = json.loads(raw)
    except RecursionError:
        yield name, RecordError("invalid JSON: nested too deeply to read")
        return
    except ValueError as err:  # JSONDecodeError, UnicodeDecodeError
        yield name, RecordError(f"invalid JSON: {one_line(err)}")
        return
    if whole_file and plainly_not_a_study(document) and not named_as_study(name):
        yield name, NotAStudyError(str(not_a_study(document)))
        return
    skipped = 0
    for item, candidate in split_document(document, name):
        result = _study_or_reason(candidate)
        if isinstance(result, RecordError):
            skipped += 1
            if skipped > MAX_SKIPS_LISTED:
                continue
        yield item, result
    if skipped > MAX_SKIPS_LISTED:
        more = f"{skipped - MAX_SKIPS_LISTED:,} more entries that are not readable studies"
        yield name, RecordError(f"{more} (the first {MAX_SKIPS_LISTED} are listed)")


def _study_or_reason(candidate: object) -> TrialRecord | RecordError:
    """:func:`parse_study` of one candidate, or why it is skipped; never raises."""
    try:
        record = parse_study(candidate)
    except RecordError as err:
        return err
    except Exception as err:  # one malformed study never stops a read
        return unexpected(err)
    try:
        encode_record(record)
    except UnicodeEncodeError:
        # json reads an unpaired "\ud800" escape into a str that no UTF-8 file (the
        # spool, the index) can hold; msgspec, the fast path, refuses it itself.
        return not_unicode(record)
    return record


def iter_json_zip(
    path: str | PathLike[str], limits: ReadLimits = DEFAULT_LIMITS
) -> Iterator[Outcome]:
    """Yield an outcome per study of a zip of JSON files (the bulk download layout).

    Members are read in archive order; directories and members not ending in
    ``.json`` are passed over (they are not studies by name). A damaged member, or
    one that unpacks to more than ``limits.max_file_bytes``, is one skipped item.

    Raises
    ------
    SourceError
        If the file is missing or not a zip archive.
    """
    with open_zip(path) as archive:
        for info in zip_members(archive, JSON_SUFFIX):
            yield from member_outcomes(archive, info, limits)


def member_outcomes(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, limits: ReadLimits
) -> Iterator[Outcome]:
    """The outcomes of one ``.json`` member of a zip, as :func:`iter_json_zip` reads it."""
    raw = read_member(archive, info, limits.max_file_bytes)
    if isinstance(raw, RecordError):
        yield info.filename, raw
    else:
        yield from parse_document(raw, info.filename, whole_file=True)


def iter_json_dir(
    path: str | PathLike[str], limits: ReadLimits = DEFAULT_LIMITS
) -> Iterator[Outcome]:
    """Yield an outcome per study in the ``*.json`` files under a folder (recursively).

    Items are named by their path relative to the folder. Each file may hold a
    study, an API page or a list of studies; a file that is plainly none of those
    (such as the label file ``expected_related.json``) gives a
    :class:`NotAStudyError`, noted as ignored; any other file that yields no study
    is a skipped item, as is a file over ``limits.max_file_bytes``. Files with other
    suffixes are not looked at.
    """
    root = Path(path)
    for file in list_files(root, JSON_SUFFIX):
        yield from file_outcomes(root, file, limits)


def file_outcomes(root: Path, file: Path, limits: ReadLimits) -> Iterator[Outcome]:
    """The outcomes of one ``.json`` file of a folder, as :func:`iter_json_dir` reads it."""
    name = file.relative_to(root).as_posix()
    raw = read_file(file, limits.max_file_bytes)
    if isinstance(raw, RecordError):
        yield name, raw
    else:
        yield from parse_document(raw, name, whole_file=True)


def _open_source(path: str | PathLike[str]) -> Path:
    """``path`` as a Path to an existing file, or raise :class:`SourceError`."""
    source = Path(path)
    if not source.is_file():
        raise SourceError(f"{source}: no such file")
    return source


def iter_jsonl(path: str | PathLike[str], limits: ReadLimits = DEFAULT_LIMITS) -> Iterator[Outcome]:
    """Yield an outcome per study of a JSON-lines file (one study per line).

    Items are named ``"line 17"`` (1-based); blank lines are not items. A line over
    ``limits.max_file_bytes`` is one skipped item, passed over without holding more
    than that many bytes of it.

    Raises
    ------
    SourceError
        If the file is missing or unreadable.
    """
    yield from line_outcomes(path, limits)


def line_outcomes(
    path: str | PathLike[str],
    limits: ReadLimits,
    start: int = 0,
    stop: int | None = None,
    first_line: int = 1,
) -> Iterator[Outcome]:
    """The outcomes of the lines of a JSON-lines file that start in bytes ``start:stop``.

    ``start`` must be where a line starts, and ``first_line`` that line's number.
    """
    source = _open_source(path)
    limit = limits.max_file_bytes
    try:
        with source.open("rb") as handle:
            handle.seek(start)
            number = first_line - 1
            while (stop is None or handle.tell() < stop) and (line := handle.readline(limit + 1)):
                number += 1
                if len(line) > limit and not line.endswith(b"\n"):
                    size = len(line) + _skip_rest_of_line(handle)
                    yield f"line {number}", RecordError(size_refusal(size, limit, "line"))
                elif line.strip():
                    yield from parse_document(line, f"line {number}")
    except OSError as err:
        raise SourceError(f"{source}: {one_line(err)}") from err


def _skip_rest_of_line(handle) -> int:
    """Read past the end of the current line, a chunk at a time; the bytes skipped."""
    skipped = 0
    while chunk := handle.readline(1 << 20):
        skipped += len(chunk)
        if chunk.endswith(b"\n"):
            break
    return skipped


def iter_json_file(
    path: str | PathLike[str], limits: ReadLimits = DEFAULT_LIMITS
) -> Iterator[Outcome]:
    """Yield an outcome per study of one ``.json`` file (a study, an API page or a list).

    A file over ``limits.max_file_bytes`` is one skipped item.

    Raises
    ------
    SourceError
        If the file is missing or unreadable.
    """
    source = _open_source(path)
    too_large = size_refusal(source.stat().st_size, limits.max_file_bytes, "file")
    if too_large:
        yield source.name, RecordError(too_large)
        return
    raw = read_file(source, limits.max_file_bytes)
    if isinstance(raw, RecordError):
        raise SourceError(f"{source}: {raw}")
    yield from parse_document(raw, source.name)
