"""Who owns a temporary version folder, and whether that process still lives.

A build or update writes its owner's facts (pid, process start, host, boot) beside
the folder it writes and holds a lock on them; clean-up removes a folder only when
its owner is provably dead (:func:`owner_is_dead`).
"""

from __future__ import annotations

import fcntl
import os
import socket
from pathlib import Path


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def process_start(pid: int) -> int | None:
    """Start time of process ``pid`` in clock ticks since boot; None if there is none.

    With the pid, it names one process for the life of a boot: a pid may be reused,
    a (pid, start) pair is not.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses; fields after it do not.
    return int(stat[stat.rindex(")") + 2 :].split()[19])


def boot_time() -> float | None:
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except OSError:
        pass
    return None


def owner_facts() -> dict:
    return {
        "pid": os.getpid(),
        "start": process_start(os.getpid()),
        "host": socket.gethostname(),
        "boot_id": boot_id(),
    }


def owner_is_dead(facts: dict) -> bool:
    """Whether the process that ``facts`` describe has certainly ended."""
    if facts.get("host") != socket.gethostname():
        return False  # another machine sharing the disk: nothing here can tell
    if facts.get("boot_id") and facts.get("boot_id") != boot_id():
        return True  # this machine restarted since
    start = process_start(int(facts.get("pid", -1)))
    if start is None:
        return True
    return facts.get("start") is not None and start != facts["start"]


def pid_gone_since(pid: int, since_ns: int) -> bool:
    """Whether no process ``pid`` that existed at ``since_ns`` (epoch ns) still runs.

    For names that hold only a pid and a time: the pid is unused, or the process now
    using it started after that time (so it is another one).
    """
    start = process_start(pid)
    if start is None:
        return True
    boot = boot_time()
    if boot is None:
        return False
    started = boot + start / os.sysconf("SC_CLK_TCK")
    return started > since_ns / 1e9 + 2  # clock ticks and rounding: a margin


def try_lock(path: Path, kind: int) -> int | None:
    """An open descriptor of ``path`` holding a ``kind`` flock, or None if it is held."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(fd, kind | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd
