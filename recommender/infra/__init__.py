"""What long commands share and nothing else knows about: progress, worker processes
and task blocks, giving memory back, time stamps, the fault points tests kill at, and
the optional extras' libraries, imported with a message saying what to install."""

from recommender.infra.clock import utc_now
from recommender.infra.faults import FAULT_ENV, PAUSE_ENV, fault_point
from recommender.infra.memory import release_free_memory
from recommender.infra.optional import MissingExtraError, require
from recommender.infra.processes import OrderedPool, WorkerDiedError, worker_count
from recommender.infra.progress import PlainProgress, is_terminal, progress
from recommender.infra.tasks import row_blocks

__all__ = [
    "FAULT_ENV",
    "PAUSE_ENV",
    "MissingExtraError",
    "OrderedPool",
    "PlainProgress",
    "WorkerDiedError",
    "fault_point",
    "is_terminal",
    "progress",
    "release_free_memory",
    "require",
    "row_blocks",
    "utc_now",
    "worker_count",
]
