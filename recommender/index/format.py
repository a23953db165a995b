"""The index format: its name and versions, ``meta.json``, and the check that a folder
holds every file its format requires, each of the recorded size and hash.

Which files an index must have is defined by the format (:mod:`recommender.index.checks`),
not by its ``meta.json``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from recommender.index.checks import file_problems
from recommender.index.errors import DamagedIndexError
from recommender.index.versions import META_FILE, resolve_index_folder

FORMAT_NAME = "trial-recommender-index"

FORMAT_VERSION = 3

# Version 2 is version 3 without record segments: it reads as a one-segment index.
READABLE_VERSIONS = (2, 3)

_HASH_CHUNK = 1 << 22


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


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
    raise_if_damaged(problems, folder)
    return meta


def raise_if_damaged(problems: list[str], folder: Path) -> None:
    if problems:
        raise DamagedIndexError(
            f"index at {folder} is damaged: " + "; ".join(problems) + " (rebuild it)"
        )
