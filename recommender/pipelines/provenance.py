"""What an index records of its sources: path, size and SHA-256 (``meta.json``)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from recommender.index import sha256_file


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
