"""The formats a source can be in, and the readers of each: the one table to extend.

==================  =============================================================
``json-zip``        zip of API v2 ``*.json`` files (``ctg-studies.json.zip``)
``xml-zip``         zip of legacy ``*.xml`` records (``AllPublicXML.zip``)
``json-dir``        folder of ``*.json`` files, searched recursively
``xml-dir``         folder of ``*.xml`` files, searched recursively
``json+xml-dir``    folder holding both: both are read, JSON first
``json+xml-zip``    zip holding both: both are read, JSON first
``jsonl``           ``.jsonl`` / ``.ndjson``, one study per line
``json``            one ``.json`` file
``xml``             one ``.xml`` file
==================  =============================================================

A new registry format is a reader module (its ``iter_*`` functions yield an
:data:`~recommender.ingest.errors.Outcome` per item; see ``ctgov_json``) and its rows
here: in :data:`READERS`, in :data:`KINDS` when zips and folders may hold its files
(which also lets several processes share them out), and in :func:`detect_format`.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

from recommender.ingest import ctgov_json, ctgov_xml
from recommender.ingest.containers import open_zip, zip_members
from recommender.ingest.ctgov_json import (
    JSON_SUFFIX,
    JSONL_SUFFIXES,
    iter_json_dir,
    iter_json_file,
    iter_json_zip,
    iter_jsonl,
)
from recommender.ingest.ctgov_xml import XML_SUFFIX, iter_xml_dir, iter_xml_file, iter_xml_zip
from recommender.ingest.errors import Outcome, SourceError
from recommender.ingest.limits import ReadLimits

PathLike = str | os.PathLike[str]
# What a reader is given: a path, or a zip already open.
Readable = PathLike | zipfile.ZipFile | None
Reader = Callable[[PathLike, ReadLimits], Iterator[Outcome]]

#: Format name -> readers run in turn over the same path.
READERS: dict[str, tuple[Reader, ...]] = {
    "json-zip": (iter_json_zip,),
    "xml-zip": (iter_xml_zip,),
    "json+xml-zip": (iter_json_zip, iter_xml_zip),
    "json-dir": (iter_json_dir,),
    "xml-dir": (iter_xml_dir,),
    "json+xml-dir": (iter_json_dir, iter_xml_dir),
    "jsonl": (iter_jsonl,),
    "json": (iter_json_file,),
    "xml": (iter_xml_file,),
}
FORMATS = tuple(READERS)


class FileKind(NamedTuple):
    """A kind of study file that zips and folders hold: its suffix, and how one zip
    member and one folder file of it are read (what a parallel run calls)."""

    suffix: str
    member_outcomes: Callable
    file_outcomes: Callable


KINDS = {
    "json": FileKind(JSON_SUFFIX, ctgov_json.member_outcomes, ctgov_json.file_outcomes),
    "xml": FileKind(XML_SUFFIX, ctgov_xml.member_outcomes, ctgov_xml.file_outcomes),
}
#: What several processes can read: zips and folders, named by the kinds they hold,
#: read in this order ("json+xml-zip"), and JSON lines.
PARALLEL_FORMATS = (
    *(f"{kinds}-{where}" for where in ("zip", "dir") for kinds in ("json", "xml", "json+xml")),
    "jsonl",
)


def _has_files(root: Path, suffix: str) -> bool:
    """Whether any file under ``root`` (recursively) ends in ``suffix``, any case."""
    return any(p.suffix.lower() == suffix and p.is_file() for p in root.rglob("*"))


def _combined(has_json: bool, has_xml: bool, kind: str, source: Path) -> str:
    """``json-<kind>``, ``xml-<kind>`` or ``json+xml-<kind>``; SourceError if neither."""
    if not (has_json or has_xml):
        what = "members" if kind == "zip" else "files"
        raise SourceError(f"{source}: {kind} holds no .json or .xml {what}")
    prefix = "json+xml" if has_json and has_xml else "json" if has_json else "xml"
    return f"{prefix}-{kind}"


def zip_format(source: Path, archive: zipfile.ZipFile | None = None) -> str:
    """The format of a zip, from the suffixes of its members."""
    with open_zip(archive or source) as archive:
        has_json = next(zip_members(archive, JSON_SUFFIX), None) is not None
        has_xml = next(zip_members(archive, XML_SUFFIX), None) is not None
    return _combined(has_json, has_xml, "zip", source)


def detect_format(path: PathLike) -> str:
    """Say how ``path`` will be read: one of :data:`FORMATS`.

    Folders and zips are classified by the suffixes of the files they hold, single
    files by their own suffix (any case).

    Parameters
    ----------
    path
        A registry file or folder.

    Returns
    -------
    str
        ``"json-zip"``, ``"xml-zip"``, ``"json+xml-zip"``, ``"json-dir"``,
        ``"xml-dir"``, ``"json+xml-dir"``, ``"jsonl"``, ``"json"`` or ``"xml"``.

    Raises
    ------
    SourceError
        If the path does not exist, a zip is corrupt, a folder or zip holds no
        ``.json``/``.xml`` files, or the suffix is not one of the above.
    """
    source = Path(path)
    if source.is_dir():
        has_json, has_xml = _has_files(source, JSON_SUFFIX), _has_files(source, XML_SUFFIX)
        return _combined(has_json, has_xml, "dir", source)
    if not source.exists():
        raise SourceError(f"{source}: no such file or folder")
    suffix = source.suffix.lower()
    if suffix == ".zip":
        return zip_format(source)
    if suffix in JSONL_SUFFIXES:
        return "jsonl"
    if suffix in (JSON_SUFFIX, XML_SUFFIX):
        return suffix[1:]
    raise SourceError(
        f"{source}: unknown registry format; expected a .zip or folder of .json/.xml "
        "studies, or a .json, .jsonl, .ndjson or .xml file"
    )
