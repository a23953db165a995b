"""What every command shares: exit codes, the error for bad input, argument types."""

from __future__ import annotations

import argparse
import errno
import sys
from collections.abc import Callable

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT = 0, 1, 2
# The machine, not the input: a full disk, no permission, a read-only file system.
EXIT_ENVIRONMENT = 3
# Another build or update is writing that index: run again later, or with --wait.
EXIT_BUSY = 4


class BadInput(Exception):
    """A problem with what the user gave us; reported without a traceback, exit 2."""


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def jobs(text: str) -> int:
    value = int(text)
    if value == 0 or value < -1:
        raise argparse.ArgumentTypeError("use a positive number of cores, or -1 for all")
    return value


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, got {text}")
    return value


def checked(parse):
    """An argparse type from a parser that raises ValueError (exit 2 with its message)."""

    def convert(text: str):
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert


def share(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise ValueError(f"must be a share between 0 and 1, got {value}")
    return value


def stderr_log(quiet: bool) -> Callable[[str], None]:
    """A ``log`` for the engine's long commands: lines to stderr unless ``quiet``."""

    def log(line: str) -> None:
        if not quiet:
            print(line, file=sys.stderr)

    return log


def add_wait(command: argparse.ArgumentParser) -> None:
    """``--wait``: wait for another writer of the same index instead of failing (exit 4)."""
    command.add_argument(
        "--wait",
        action="store_true",
        help="if another build or update is writing this index, wait for it to finish "
        "(default: fail at once, exit code 4)",
    )


# Errors of the machine, in words a person acts on; the errno name is kept for search.
_OS_REASONS = {
    errno.ENOSPC: "no space left on the device: free some space, or write elsewhere",
    errno.EDQUOT: "disk quota exceeded: free some space, or write elsewhere",
    errno.EFBIG: "a file grew past the size this process may write (ulimit -f)",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOENT: "no such file or folder",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EISDIR: "a folder where a file was expected",
    errno.EMFILE: "too many open files (ulimit -n)",
    errno.ENFILE: "too many open files on this machine",
    errno.EIO: "input/output error: the disk or the network file system failed",
}


def environment_error(exc: BaseException) -> str:
    """One line for a failure of the machine rather than of the input: a full disk, no
    permission, a worker killed, memory run out; with the file, and notes added on the
    way up (such as whether the index served is as it was)."""
    if isinstance(exc, MemoryError):
        text = "out of memory: use fewer processes (--jobs), or a machine with more memory"
    elif isinstance(exc, OSError) and exc.errno is not None:
        reason = _OS_REASONS.get(exc.errno) or (exc.strerror or str(exc)).lower()
        name = errno.errorcode.get(exc.errno, str(exc.errno))
        files = [f for f in (exc.filename, getattr(exc, "filename2", None)) if f is not None]
        where = f" ({', '.join(map(str, files))})" if files else ""
        text = f"{reason} [{name}]{where}"
    else:
        text = str(exc) or type(exc).__name__
    return "; ".join([text, *getattr(exc, "__notes__", ())])
