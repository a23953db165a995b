"""A test hook: kill or stop this process at a named point, to test what a crash or a
slow writer leaves.

``RECOMMENDER_FAULT_AT=<point>`` makes :func:`fault_point` send the process SIGKILL
when it reaches that point; nothing runs after it (no ``finally``, no ``atexit``), as
when the machine's OOM killer or an operator's ``kill -9`` strikes.
``RECOMMENDER_PAUSE_AT=<point>`` makes it stop itself there (SIGSTOP) until it is
sent SIGCONT: a writer held in the middle of its work while a test runs another.
Unset (always, outside tests) they cost two dictionary lookups. The points are listed
in ``docs/index-guarantees.md``.
"""

from __future__ import annotations

import os
import signal

FAULT_ENV = "RECOMMENDER_FAULT_AT"
PAUSE_ENV = "RECOMMENDER_PAUSE_AT"


def fault_point(name: str) -> None:
    """Die here by SIGKILL when ``$RECOMMENDER_FAULT_AT`` names this point; stop here
    (SIGSTOP, until continued) when ``$RECOMMENDER_PAUSE_AT`` does."""
    if os.environ.get(FAULT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
    if os.environ.get(PAUSE_ENV) == name:
        os.kill(os.getpid(), signal.SIGSTOP)
