"""Worker processes that run tasks and give the results back in task order.

For the GIL-bound Python passes of a build (reading registry files, learning
abbreviations): threads would take turns, processes run side by side. Workers are forked where the
system can, so nothing is imported again and a task's function and arguments are
all a worker is sent. A few tasks per worker are submitted ahead of the result being
yielded, so memory stays bounded when the caller is the slower side; leaving early
(an error, an abandoned generator) cancels what has not started.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from joblib import cpu_count

TASKS_AHEAD = 3  # tasks in flight per worker

Task = tuple[Callable[..., Any], tuple]


def worker_count(n_jobs: int) -> int:
    """Processes for ``n_jobs`` as joblib counts them: -1 is one per core, -2 all but one."""
    # Not joblib's effective_n_jobs: that asks the active backend (a Dask cluster's
    # workers under --scheduler), while these processes always run on this machine.
    if n_jobs == 0:
        raise ValueError("n_jobs must not be 0")
    return n_jobs if n_jobs > 0 else max(1, cpu_count() + 1 + n_jobs)


class OrderedPool:
    """``n_jobs`` worker processes; :meth:`results` yields task results in task order.

    Parameters
    ----------
    n_jobs : int
        Worker processes (at least 1).
    who : str
        Names the workers in the error raised if one dies ("x.zip: a process reading it").
    """

    def __init__(self, n_jobs: int, who: str) -> None:
        if n_jobs < 1:
            raise ValueError(f"n_jobs must be at least 1, got {n_jobs}")
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
        self.n_jobs, self.who = n_jobs, who
        self._executor = ProcessPoolExecutor(n_jobs, mp_context=context)

    def __enter__(self) -> OrderedPool:
        return self

    def __exit__(self, *exc_info) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    def results(self, tasks: Iterable[Task]) -> Iterator[Any]:
        """``function(*arguments)`` of each task, run by the workers, in task order.

        Raises
        ------
        RuntimeError
            If a worker process dies (killed, out of memory).
        """
        pending: deque[Future] = deque()
        for function, arguments in tasks:
            pending.append(self._executor.submit(function, *arguments))
            if len(pending) >= TASKS_AHEAD * self.n_jobs:
                yield self._result(pending.popleft())
        while pending:
            yield self._result(pending.popleft())

    def _result(self, future: Future) -> Any:
        try:
            return future.result()
        except BrokenProcessPool as err:
            raise RuntimeError(
                f"{self.who} died ({err}); if memory is short, use fewer processes (--jobs)"
            ) from None
