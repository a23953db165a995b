"""Is an index already what a build would make? ``recommender build --if-changed``.

An index records what it was built from (each source's path, bytes and SHA-256) and
how (field groups, ``k``, neighbour method, read limits) in its ``meta.json``. A build
asked for the same sources and parameters would write the same index, so it can be
skipped; anything different (another source list, a source whose content changed,
another ``k``) makes the index stale. Sizes are compared first; a source's SHA-256 is
computed only when its size matches and it cannot be shown unchanged by its
modification time (same path, nothing in it modified since before the build).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from recommender.index import DamagedIndexError, read_meta
from recommender.ingest import ReadLimits
from recommender.pipelines.provenance import describe_source
from recommender.text import DEFAULT_FIELD_GROUPS, FieldGroup


@dataclass(frozen=True)
class IndexCheck:
    """The verdict on an existing index.

    Attributes
    ----------
    current : bool
        True when the index was built from the same sources with the same parameters.
    reason : str
        Why it is not current ("" when it is).
    built_at : str
        When the index was built (ISO 8601, UTC), "" when there is no readable index.
    """

    current: bool
    reason: str = ""
    built_at: str = ""


def check_index(
    folder: str | os.PathLike,
    sources: Sequence[str | os.PathLike],
    *,
    k: int,
    neighbour_method: str,
    limits: ReadLimits,
    groups: Sequence[FieldGroup] = DEFAULT_FIELD_GROUPS,
) -> IndexCheck:
    """Compare the index in ``folder`` with a build of ``sources`` with these parameters.

    Parameters
    ----------
    folder : path
        Index folder; a missing or unreadable index is not current.
    sources : sequence of path
        The sources the build would read, in order (the last one wins a duplicate, so
        order matters).
    k, neighbour_method, limits, groups
        The build parameters (see :func:`recommender.pipelines.build.build_index`).

    Returns
    -------
    IndexCheck
    """
    if not Path(folder).exists():
        return IndexCheck(False, "there is no index there yet")
    try:
        meta = read_meta(folder)
    except DamagedIndexError as exc:
        return IndexCheck(False, str(exc))
    built_at = str(meta.get("built_at", ""))
    reason = _parameter_change(meta, k, neighbour_method, limits, groups)
    reason = reason or _source_change(meta, [Path(s) for s in sources])
    return IndexCheck(not reason, reason, built_at)


def _parameter_change(
    meta: dict, k: int, neighbour_method: str, limits: ReadLimits, groups: Sequence[FieldGroup]
) -> str:
    built = {
        "k": meta.get("counts", {}).get("k"),
        "neighbour method": meta.get("neighbour_method"),
        "read limits": meta.get("ingest", {}).get("limits"),
        "field groups": meta.get("vectorizer", {}).get("groups"),
    }
    asked = {
        "k": k,
        "neighbour method": neighbour_method,
        "read limits": vars(limits),
        "field groups": [g.to_dict() for g in groups],
    }
    for name, value in asked.items():
        # Through JSON, as the index stored it (tuples become lists).
        if json.loads(json.dumps(value)) != built[name]:
            shown = "different" if name == "field groups" else f"{built[name]!r}"
            wanted = "" if name == "field groups" else f", not {value!r}"
            return f"its {name} is {shown}{wanted}"
    return ""


def _source_change(meta: dict, sources: list[Path]) -> str:
    recorded = meta.get("sources") or []
    asked_paths = [str(s) for s in sources]
    built_paths = [str(r.get("path")) for r in recorded]
    if len(recorded) != len(sources):
        return f"it was built from {built_paths}, not {asked_paths}"
    not_after = _started_at(meta)
    for source, record in zip(sources, recorded, strict=True):
        if not source.exists():
            return f"source {source} does not exist"
        size, newest = _size_and_newest_mtime(source)
        built_bytes = record.get("bytes")
        if size != built_bytes:
            shown = f"{built_bytes:,}" if isinstance(built_bytes, int) else "an unknown number of"
            return (
                f"source {source} has {size:,} bytes; the index was built from "
                f"{record.get('path')} with {shown} bytes"
            )
        same_path = Path(str(record.get("path"))).resolve() == source.resolve()
        if same_path and not_after is not None and newest < not_after:
            continue  # untouched since before the build read it: no need to hash
        if describe_source(source)["sha256"] != record.get("sha256"):
            return f"source {source} differs from {record.get('path')} (SHA-256)"
    return ""


def _started_at(meta: dict) -> float | None:
    """When the build began reading, as a POSIX time; None when meta cannot say.

    ``built_at`` is taken after the neighbour search, so the recorded stage times are
    subtracted (and a second of slack for its whole-second resolution): a file
    modified while the build ran is then hashed rather than trusted. An index changed
    by ``recommender update`` keeps its full build's time and sources in meta.
    """
    full_build = meta.get("full_build") or meta
    try:
        finished = datetime.fromisoformat(str(full_build["built_at"])).timestamp()
        spent = sum(float(s) for s in meta.get("seconds", {}).values())
    except (KeyError, ValueError, TypeError):
        return None
    return finished - spent - 1.0


def _size_and_newest_mtime(path: Path) -> tuple[int, float]:
    """Bytes (summed over a folder's files, as the index records them) and the newest
    modification time of the path or anything in it (a renamed file touches its folder)."""
    if path.is_file():
        stat = path.stat()
        return stat.st_size, stat.st_mtime
    total, newest = 0, path.stat().st_mtime
    for item in path.rglob("*"):
        stat = item.stat()
        newest = max(newest, stat.st_mtime)
        if item.is_file():
            total += stat.st_size
    return total, newest
