"""One writer at a time per index: a build or update holds the index's writer lock from
its start to its end (:class:`WriterLock`).

Two writers of one index, run side by side, would each publish a version made from
what it read: the later swap wins and the other's work is gone, both commands having
succeeded. So a writer takes an exclusive ``flock`` on ``<versions>/.writer`` before
it reads anything and keeps it until its version is served (or it fails); a second
writer fails at once with :class:`IndexBusyError`, naming the first from the facts
it wrote into the file (command, pid, host, start), or waits for it (``wait=True``).

Beyond the lock, a writer checks just before it swaps its version in that the index
served is still the one served when it started (:meth:`WriterLock.check_unchanged`):
a writer that ignored the lock (another host on a shared disk, an older version of
this code, a link swapped by hand) is then not overwritten (:class:`IndexChangedError`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from recommender.index.errors import IndexBusyError, IndexChangedError
from recommender.index.owners import owner_facts
from recommender.index.versions import (
    check_replaceable,
    remove_stale,
    served_version,
    versions_folder,
    writer_lock,
)

WRITER_FILE = ".writer"

# Descriptors of writer locks held by this process: a forked child (a worker) closes
# its copies, so that it never keeps the lock after this process has gone.
_HELD: set[int] = set()


def _close_held_in_child() -> None:
    for fd in _HELD:
        with contextlib.suppress(OSError):
            os.close(fd)
    _HELD.clear()


os.register_at_fork(after_in_child=_close_held_in_child)


class WriterLock:
    """The exclusive right to write the index served at ``served``, as a context manager.

    Entering takes the lock (or raises :class:`IndexBusyError`, or waits), removes
    what writers killed earlier left (:func:`~recommender.index.versions.remove_stale`)
    and notes which version is served (:attr:`expected`). Leaving releases it; an
    ``OSError`` leaving the block (a full disk) gets a note saying whether the served
    index is as it was.

    Parameters
    ----------
    served : path
        The served path (``--out`` of a build, the index an update writes).
    command : str
        ``"build"`` or ``"update"``, for the message another writer shows.
    wait : bool, default False
        Wait for a writer that holds the lock instead of raising.
    log : callable, optional
        Receives one line when this writer waits.

    Attributes
    ----------
    expected : str or None
        :func:`~recommender.index.versions.served_version` when the lock was taken.
    """

    def __init__(
        self,
        served: str | os.PathLike,
        command: str,
        *,
        wait: bool = False,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.served = Path(served)
        self.command = command
        self.wait = wait
        self.log = log or (lambda _line: None)
        self.expected: str | None = None
        self._fd: int | None = None

    def __enter__(self) -> WriterLock:
        check_replaceable(self.served)
        versions = versions_folder(self.served)
        versions.mkdir(parents=True, exist_ok=True)
        fd = os.open(versions / WRITER_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            self._take(fd)
        except BaseException:
            os.close(fd)
            raise
        facts = {**owner_facts(), "command": self.command, "started": _now()}
        with contextlib.suppress(OSError):  # a full disk: only the waiting ones' message
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(facts).encode(), 0)
        self._fd = fd
        _HELD.add(fd)
        with writer_lock(versions):
            # Here, not only when saving: a writer that writes nothing (an update with
            # nothing new) still clears what a killed one left.
            remove_stale(self.served)
            self.expected = served_version(self.served)
        return self

    def _take(self, fd: int) -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            holder = _holder(fd)
        if not self.wait:
            raise IndexBusyError(
                f"{self.served} is being written by {holder}; wait for it to finish, "
                f"or run this {self.command} with --wait to wait for it"
            )
        self.log(f"waiting for {holder} to finish writing {self.served}")
        fcntl.flock(fd, fcntl.LOCK_EX)

    def check_unchanged(self) -> None:
        """Raise :class:`IndexChangedError` if another version is served than at the start.

        Called under the short writer lock just before this writer names and serves
        its version (see :class:`~recommender.index.versions.Staging`).
        """
        now = served_version(self.served)
        if now != self.expected:
            raise IndexChangedError(
                f"{self.served} was replaced while this {self.command} ran, by a writer "
                "that did not wait for it (another host, or a link swapped by hand); "
                f"nothing was replaced: run the {self.command} again"
            )

    def __exit__(self, exc_type, exc, traceback) -> None:
        if isinstance(exc, OSError) and self._fd is not None:
            exc.add_note(self._outcome())
        fd, self._fd = self._fd, None
        if fd is not None:
            _HELD.discard(fd)
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)  # no stale facts for the next one to read
            os.close(fd)

    def _outcome(self) -> str:
        """What a reader of the served path finds after this writer failed."""
        if served_version(self.served) != self.expected:
            return f"a new version of the index at {self.served} was served before this"
        if self.expected is None:
            return f"no index was written at {self.served}"
        return f"the index at {self.served} is as it was"


def _holder(fd: int) -> str:
    """Who holds the lock, from the facts they wrote: ``recommender build (pid 4711,
    started ...)``; "another build or update" if they are not (yet) there."""
    try:
        facts = json.loads(os.pread(fd, 4096, 0) or b"{}")
        command, pid, started = facts["command"], int(facts["pid"]), facts["started"]
    except (OSError, ValueError, KeyError, TypeError):
        return "another build or update"
    host = facts.get("host")
    where = f" on {host}" if host and host != owner_facts()["host"] else ""
    return f"recommender {command} (pid {pid}{where}, started {started})"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
