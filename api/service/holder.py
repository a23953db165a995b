"""The one loaded index of a server process, shared by all requests, swapped atomically.

Requests read :attr:`IndexHolder.index` once, at their start, and use that object to
the end: a reload that lands meanwhile replaces the holder's reference, not the
object a request holds, so requests in flight finish on the old index. The served
path is a symlink to a version folder (see :mod:`recommender.index.versions`); a loaded
index keeps its version folder, which no build removes or changes while the index
object holds it, and lets go when the last request using it does.

A new version is loaded and verified in full, and its per-index helpers prepared
(:func:`~api.service.prepared.prepare`), before the one assignment that swaps it in:
the first requests on it pay nothing more than the last ones on the old.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from api.service.prepared import prepare
from recommender.index import META_FILE, DamagedIndexError, TrialIndex

log = logging.getLogger(__name__)

# What identifies one build on disk: a build or update publishes a new version folder
# and points the served symlink at it; ``stat`` follows the link, so a new build
# always gives the ``meta.json`` seen through it a new inode.
Signature = tuple[int, int, int] | None


def meta_signature(folder: Path) -> Signature:
    """Inode, mtime (ns) and size of the index's ``meta.json``; None when it is absent."""
    try:
        stat = (folder / META_FILE).stat()
    except OSError:
        return None
    return (stat.st_ino, stat.st_mtime_ns, stat.st_size)


def folder_bytes(folder: Path) -> int:
    """Total size of the regular files directly in ``folder``."""
    with os.scandir(folder) as entries:
        return sum(e.stat().st_size for e in entries if e.is_file())


@dataclass(frozen=True)
class LoadedIndex:
    """A loaded index with the facts ``/ready`` and ``/metrics`` report about it.

    Attributes
    ----------
    index : TrialIndex
    path : Path
        The served path it was loaded from (a link a build repoints).
    signature : Signature
        Of the served path's ``meta.json`` when the load began.
    bytes_on_disk : int
    loaded_at : str
        ISO time of the load, to the millisecond.
    """

    index: TrialIndex
    path: Path
    signature: Signature
    bytes_on_disk: int
    loaded_at: str

    @property
    def version_path(self) -> Path:
        """The version folder actually loaded: where the served path led at load time
        (it may lead elsewhere since)."""
        return self.index.path

    @classmethod
    def load(cls, folder: Path, signature: Signature) -> LoadedIndex:
        """Load and verify the index in ``folder``; raises :class:`DamagedIndexError`.

        ``signature`` is :func:`meta_signature` taken *before* loading: if the folder
        changes during the load, the next change check sees a newer one and loads again.
        """
        index = TrialIndex.load(folder, verify=True)
        return cls(
            index=index,
            path=folder,
            signature=signature,
            bytes_on_disk=folder_bytes(folder),
            loaded_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
        )


class IndexHolder:
    """Holds the serving index of this process and replaces it on reload.

    Parameters
    ----------
    folder : Path
        The index folder; loaded (and verified) now, reloaded from the same place.

    Raises
    ------
    DamagedIndexError
        When the index cannot be loaded: a server without an index does not start.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._current = LoadedIndex.load(folder, meta_signature(folder))
        self._lock = threading.Lock()  # one reload at a time; readers never wait
        self._refused: Signature = None
        self.last_error: str | None = None
        # Reloads by outcome ("loaded", "refused"), for /metrics.
        self.reloads: Counter[str] = Counter()

    @property
    def current(self) -> LoadedIndex:
        return self._current

    @property
    def index(self) -> TrialIndex:
        return self._current.index

    def reload(self) -> tuple[LoadedIndex, LoadedIndex]:
        """Load the folder's index fully, then swap it in with one assignment.

        Returns
        -------
        previous, fresh : LoadedIndex

        Raises
        ------
        DamagedIndexError
            The new index is refused; the previous one keeps serving.
        """
        with self._lock:
            previous = self._current
            signature = meta_signature(self.folder)
            started = time.perf_counter()
            try:
                fresh = LoadedIndex.load(self.folder, signature)
            except DamagedIndexError as exc:
                self.last_error = str(exc)
                self._refused = signature  # the build that failed, not one swapped in since
                self.reloads["refused"] += 1
                log.warning("reload refused, still serving %s: %s", previous.version_path.name, exc)
                raise
            prepare(fresh.index)  # before the swap, so no request waits for it
            self._current = fresh
            self.last_error = None
            self.reloads["loaded"] += 1
            log.info(
                "serving %s now (built at %s, %d studies; loaded and verified in %.1f s), "
                "instead of %s",
                fresh.version_path.name,
                fresh.index.built_at,
                len(fresh.index),
                time.perf_counter() - started,
                previous.version_path.name,
            )
            return previous, fresh

    def changed_on_disk(self) -> bool:
        """Whether the folder holds a build other than the one serving (or last refused)."""
        signature = meta_signature(self.folder)
        return signature != self._current.signature and signature != self._refused

    def up_to_date(self) -> bool:
        """Whether the served path still leads to the build serving (one ``stat``)."""
        return meta_signature(self.folder) == self._current.signature

    def reload_if_changed(self) -> bool:
        """Reload when :meth:`changed_on_disk`; True when a new index was swapped in.

        A damaged new build is refused (and not retried until it changes again).
        """
        if not self.changed_on_disk():
            return False
        try:
            self.reload()
        except DamagedIndexError:
            return False
        return True
