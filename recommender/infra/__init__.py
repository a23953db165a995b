"""What long commands share and nothing else knows about: progress, worker processes
and task blocks, giving memory back, time stamps, and the fault points tests kill at."""

from recommender.infra.clock import utc_now
from recommender.infra.faults import FAULT_ENV, PAUSE_ENV, fault_point
from recommender.infra.memory import release_free_memory
from recommender.infra.processes import OrderedPool, WorkerDiedError, worker_count
from recommender.infra.progress import PlainProgress, is_terminal, progress
from recommender.infra.tasks import row_blocks

__all__ = [
    "FAULT_ENV",
    "PAUSE_ENV",
    "OrderedPool",
    "PlainProgress",
    "WorkerDiedError",
    "fault_point",
    "is_terminal",
    "progress",
    "release_free_memory",
    "row_blocks",
    "utc_now",
    "worker_count",
]
