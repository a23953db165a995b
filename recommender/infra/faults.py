"""A test hook: kill this process at a named point, to test what a crash leaves.

``RECOMMENDER_FAULT_AT=<point>`` makes :func:`fault_point` send the process SIGKILL
when it reaches that point; nothing runs after it (no ``finally``, no ``atexit``), as
when the machine's OOM killer or an operator's ``kill -9`` strikes. Unset (always,
outside tests) it costs one dictionary lookup. The points are listed in
``docs/index-guarantees.md``.
"""

from __future__ import annotations

import os
import signal

FAULT_ENV = "RECOMMENDER_FAULT_AT"


def fault_point(name: str) -> None:
    """Die here, by SIGKILL, when ``$RECOMMENDER_FAULT_AT`` names this point."""
    if os.environ.get(FAULT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
