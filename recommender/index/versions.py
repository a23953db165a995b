"""Where an index lives: versioned folders behind one symlink, replaced by one rename.

For a served path ``models/index`` the layout is::

    models/index -> .index.versions/20261202T153012123456Z-4711     a relative symlink
    models/.index.versions/20261202T153012123456Z-4711/            the version served
    models/.index.versions/20261201T090000000000Z-4410/            the one before (kept)
    models/.index.versions/.tmp-4711-1764689412000000000/          a version being written
    models/.index.versions/.tmp-4711-1764689412000000000.owner     its owner's lock file

A build or update writes a new version into a temporary folder (:class:`Staging`),
renames it to a version folder when complete, then points the served path at it by
creating a symlink under a temporary name and renaming it over the served path: one
``rename(2)``, so a reader finds the old version or the new one, never nothing, at
whatever instant the writer is killed. Nothing ever writes into a version folder once
it is named; its files are made read-only.

A served path that is still a plain folder (an index built before this layout) is
replaced by exchanging it with the new symlink (``renameat2(RENAME_EXCHANGE)``, one
atomic step), after which the old folder is moved into the versions folder. Where the
exchange is not available, the old folder is first moved aside; a reader that finds
no served path then loads the newest version (:func:`resolve_index_folder`).

Clean-up (:func:`remove_stale`): a temporary folder is removed only when its owner
is provably dead (its lock file is not locked, and the pid it names is gone or
belongs to a process started since, on this host and boot); versions other than the
current and the previous one are removed unless a process holds them open
(:func:`hold_version` takes a shared lock on a version's ``meta.json``).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import fcntl
import json
import os
import re
import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from recommender.index.owners import owner_facts, owner_is_dead, pid_gone_since, try_lock
from recommender.infra import fault_point

# The file written last into a version: a folder holding it is a complete index.
META_FILE = "meta.json"

_OWNER_SUFFIX = ".owner"

_TMP_PREFIX = ".tmp-"

# Temporary names beside the served path: the link being swapped in, a build's records
# read so far (``.index.records-<pid>-<ns>``), and the folders of the layout before
# versions (``.index.tmp-<pid>-<ns>``, ``.index.old-<pid>-<ns>``).
_SIDE_TEMP = re.compile(
    r"^\.(?P<name>.+)\.(?P<kind>link|records|tmp|old)-(?P<pid>\d+)-(?P<ns>\d+)$"
)

_MAYBE_AN_INDEX = ("tmp", "old")

_VERSION_NAME = re.compile(r"^\d{8}T\d{12}Z-[\w-]+$")

_RENAME_EXCHANGE = 2

_AT_FDCWD = -100


def versions_folder(served: Path) -> Path:
    """The folder holding the versions of the index served at ``served``."""
    return served.parent / f".{served.name}.versions"


def resolve_index_folder(served: str | os.PathLike) -> Path:
    """The folder a reader should load for ``served``, resolved once.

    The symlink's target; the folder itself for a plain folder (the layout before
    versions). When ``served`` does not exist or its link is dangling, the newest
    version (a swap that a killed process left half done), else ``served`` itself,
    for the caller to report as missing.
    """
    served = Path(served)
    if served.is_dir():
        return Path(os.path.realpath(served))
    newest = newest_version(versions_folder(served))
    return newest if newest is not None else served


def newest_version(versions: Path) -> Path | None:
    """The version folder with the latest name that holds a ``meta.json``, if any."""
    for folder in sorted(_version_folders(versions), reverse=True):
        if (folder / META_FILE).is_file():
            return folder
    return None


def _version_folders(versions: Path) -> list[Path]:
    try:
        entries = list(os.scandir(versions))
    except OSError:
        return []
    return [
        Path(e.path)
        for e in entries
        if _VERSION_NAME.match(e.name) and e.is_dir(follow_symlinks=False)
    ]


def served_version(served: Path) -> str | None:
    """Which version a reader of ``served`` loads now: its folder and the inode of its
    ``meta.json`` (a plain folder replaced by another has another); None when none.

    What a writer compares before swapping its own version in (see
    :mod:`recommender.index.writers`).
    """
    folder = resolve_index_folder(served)
    try:
        inode = (folder / META_FILE).stat().st_ino
    except OSError:
        return None
    return f"{os.path.realpath(folder)}#{inode}"


def check_replaceable(served: Path) -> None:
    """Raise ``FileExistsError`` when ``served`` exists and is neither an index nor empty."""
    if served.is_symlink() or not served.exists():
        return
    if not served.is_dir():
        raise FileExistsError(f"{served} exists and is not an index; refusing to replace it")
    if not (served / META_FILE).exists() and any(served.iterdir()):
        raise FileExistsError(f"{served} exists and is not an index; refusing to replace it")


class VersionHold:
    """A shared lock on a loaded version's ``meta.json``, released exactly once.

    An object rather than a bare descriptor so that everything referring to one load
    (an index and its shallow copies) shares it: the descriptor is closed when the
    last of them goes, never twice. A second ``close`` of a number the kernel has
    since handed out again would close someone else's file or socket.
    """

    def __init__(self, fd: int | None) -> None:
        self._fd = fd

    def close(self) -> None:
        fd, self._fd = self._fd, None
        release(fd)

    def __del__(self) -> None:
        self.close()


def hold_version(folder: Path) -> VersionHold:
    """Mark ``folder`` (a loaded version) as in use until the returned hold is closed.

    A shared lock on its ``meta.json``: :func:`remove_stale` never removes a version
    that some process holds. When the folder cannot be locked the hold holds nothing
    (the version is then merely not protected: the current and previous versions are
    kept anyway).
    """
    return VersionHold(try_lock(folder / META_FILE, fcntl.LOCK_SH))


def release(fd: int | None) -> None:
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)


class Staging:
    """A temporary folder for a new version of the index served at ``served``.

    Created with an owner lock file (pid, process start time, host; flock held) so
    that a later writer can prove it dead if this process is killed. Use as a context
    manager: leaving the block without :meth:`publish` removes the folder.

    Parameters
    ----------
    served : path
        The served path (symlink, old-layout folder, or nothing yet).
    guard : callable, optional
        Called under the writer lock just before the version is named and served;
        raises to refuse (:meth:`~recommender.index.writers.WriterLock.check_unchanged`).

    Attributes
    ----------
    folder : Path
        Where to write the new version's files.
    """

    def __init__(self, served: str | os.PathLike, guard: Callable[[], None] | None = None) -> None:
        self.served = Path(served)
        self.guard = guard
        check_replaceable(self.served)
        self.versions = versions_folder(self.served)
        self.versions.mkdir(parents=True, exist_ok=True)
        name = f"{_TMP_PREFIX}{os.getpid()}-{time.time_ns()}"
        self.folder = self.versions / name
        self.owner = self.versions / f"{name}{_OWNER_SUFFIX}"
        self.published: Path | None = None
        with writer_lock(self.versions):
            remove_stale(self.served)
            # The lock file exists before the folder, and outlives it, so that a folder
            # without one is never ours to remove.
            flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
            self._fd: int | None = os.open(self.owner, flags, 0o644)
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX)
                os.write(self._fd, json.dumps(owner_facts()).encode())
                self.folder.mkdir()
            except BaseException:  # a full disk: leave nothing, hold nothing
                self.close()
                raise

    def __enter__(self) -> Staging:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        """Remove the temporary folder (if not published) and the lock file."""
        if self.published is None and self.folder.exists():
            shutil.rmtree(self.folder, ignore_errors=True)
        with contextlib.suppress(OSError):
            self.owner.unlink()
        release(self._fd)
        self._fd = None

    def publish(self) -> Path:
        """Name the finished folder as a version and serve it; returns the version folder.

        Every file is made read-only first, and complete before any reader can find
        the version.
        """
        for entry in os.scandir(self.folder):
            os.chmod(entry.path, 0o444)
        # Only the folder entries are flushed, not the files' data: that would add a
        # third to a save (the disk write of the whole index). A kill is survived
        # either way; after a power loss, see docs/index-guarantees.md.
        _fsync_dir(self.folder)
        with writer_lock(self.versions):
            if self.guard is not None:
                self.guard()
            version = self.versions / _version_name()
            fault_point("before-rename-version")
            os.rename(self.folder, version)
            self.published = version
            _fsync_dir(self.versions)
            fault_point("renamed-version")
            point_at(self.served, version)
            fault_point("swapped")
            self.close()
            remove_stale(self.served)
        return version


@contextlib.contextmanager
def writer_lock(versions: Path):
    """Held while a writer creates a staging folder, publishes, or cleans up.

    Writers may build side by side; naming, swapping and removing happen one at a
    time, so what one writer sees under the lock is not half done by another.
    """
    fd = os.open(versions / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _version_name() -> str:
    now = datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%S%f}Z-{os.getpid()}"


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def point_at(served: Path, version: Path) -> None:
    """Make ``served`` a symlink to ``version`` in one atomic step.

    A symlink (or nothing) at ``served`` is replaced by ``rename(2)``; a plain index
    folder (the layout before versions) is exchanged with the link and then moved
    into the versions folder, where it stays as the previous version.
    """
    link = served.parent / f".{served.name}.link-{os.getpid()}-{time.time_ns()}"
    os.symlink(os.path.relpath(version, served.parent), link)
    fault_point("before-swap")
    try:
        if served.is_symlink() or not served.exists():
            os.replace(link, served)
        else:
            check_replaceable(served)
            _replace_folder_with_link(served, link, versions_folder(served))
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(link)
    _fsync_dir(served.parent)


def _replace_folder_with_link(served: Path, link: Path, versions: Path) -> None:
    legacy = versions / _legacy_name(served)
    if exchange(link, served):
        fault_point("exchanged")
        os.rename(link, legacy)  # ``link`` now names the old folder
        return
    # No atomic exchange here: for an instant there is no served path, and readers
    # then load the newest version (resolve_index_folder), which is the new one.
    os.rename(served, legacy)
    fault_point("moved-aside")
    os.replace(link, served)


def _legacy_name(folder: Path) -> str:
    try:
        built = (folder / META_FILE).stat().st_mtime
    except OSError:
        built = time.time()
    # The pid and time keep two old folders of one build time from colliding.
    stamp = f"{datetime.fromtimestamp(built, UTC):%Y%m%dT%H%M%S%f}Z"
    return f"{stamp}-legacy-{os.getpid()}-{time.time_ns()}"


def exchange(a: Path, b: Path) -> bool:
    """Swap the names ``a`` and ``b`` atomically (Linux ``renameat2``); False if unsupported."""
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return False
    libc = ctypes.CDLL(libc_name, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    result = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def remove_stale(served: Path) -> list[Path]:
    """Remove what killed writers left, and versions no longer needed; returns them.

    Call under :func:`writer_lock`. Removes:

    * temporary version folders whose owner is provably dead (see module docs);
    * beside ``served``: its temporary links, the records folders of builds, and the
      ``.tmp-``/``.old-`` folders of the layout before versions, when the pid in their
      name is provably gone and not this process's (and, for the last two, the served
      path holds an index, so none of them is the only copy);
    * versions other than the one served and the newest one older than it (which
      a server may still be answering from), unless a process holds them open.
    """
    versions = versions_folder(served)
    removed = _remove_dead_staging(versions)
    removed += _remove_side_temps(served)
    removed += _remove_old_versions(served, versions)
    return removed


def _remove_dead_staging(versions: Path) -> list[Path]:
    removed = []
    for owner in versions.glob(f"{_TMP_PREFIX}*{_OWNER_SUFFIX}"):
        fd = try_lock(owner, fcntl.LOCK_EX)
        if fd is None:
            continue  # its owner holds the lock: alive
        try:
            try:
                facts = json.loads(os.pread(fd, 4096, 0) or b"{}")
            except ValueError:
                facts = {}
            # An empty file: killed between creating and writing it, before any folder.
            if facts and not owner_is_dead(facts):
                continue
            folder = owner.with_name(owner.name[: -len(_OWNER_SUFFIX)])
            if folder.exists():
                _rmtree(folder)
                removed.append(folder)
            owner.unlink()
        finally:
            release(fd)
    return removed


def _remove_side_temps(served: Path) -> list[Path]:
    removed = []
    served_ok = (served / META_FILE).is_file()
    for entry in served.parent.glob(f".{served.name}.*-*-*"):
        match = _SIDE_TEMP.match(entry.name)
        if not match or match["name"] != served.name:
            continue
        if match["kind"] in _MAYBE_AN_INDEX and not served_ok:
            continue  # after a crash of the old swap, this may be the only index
        pid = int(match["pid"])
        # This process's own (a build's spool, a link being swapped in) is alive
        # whatever the clock says: pid_gone_since compares wall-clock times, and a clock
        # stepped forward since the name was made (NTP, a resumed virtual machine) would
        # make it look older than its process (a 600k build lost its spool that way).
        if pid == os.getpid() or not pid_gone_since(pid, int(match["ns"])):
            continue
        if entry.is_symlink() or not entry.is_dir():
            entry.unlink()
        elif match["kind"] == "link" and (entry / META_FILE).is_file():
            # Killed right after exchanging an old-layout folder with its link: the
            # folder is the previous index; keep it as such.
            os.rename(entry, versions_folder(served) / _legacy_name(entry))
            continue
        else:
            _rmtree(entry)
        removed.append(entry)
    return removed


def _remove_old_versions(served: Path, versions: Path) -> list[Path]:
    if not served.is_symlink() or not served.exists():
        return []  # until the served path is a working link, nothing here is surely unused
    current = Path(os.path.realpath(served))
    folders = sorted(Path(os.path.realpath(f)) for f in _version_folders(versions))
    older = [f for f in folders if f.name < current.name]
    # A version newer than the one served was named by a writer killed before it
    # swapped it in (naming and swapping happen under the writer lock).
    keep = {current, older[-1]} if older else {current}
    removed = []
    for folder in folders:
        if folder in keep:
            continue
        fd = try_lock(folder / META_FILE, fcntl.LOCK_EX)
        if fd is None and (folder / META_FILE).exists():
            continue  # a process holds it open
        try:
            _rmtree(folder)
            removed.append(folder)
        finally:
            release(fd)
    return removed


def _rmtree(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
