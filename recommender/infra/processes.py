"""Worker processes that run tasks and give the results back in task order.

For the GIL-bound Python passes of a build (reading registry files, learning
abbreviations): threads would take turns, processes run side by side. Workers are forked where the
system can, so nothing is imported again and a task's function and arguments are
all a worker is sent. A few tasks per worker are submitted ahead of the result being
yielded, so memory stays bounded when the caller is the slower side; leaving early
(an error, an abandoned generator) cancels what has not started.

Workers die with the process that started them. Killed (``kill -9``, the OOM
killer), a parent cannot stop its workers, and they would wait for good: one
writing a result nobody reads, another on a lock the parent held. So each worker
asks the kernel for SIGKILL when its parent goes (Linux ``PR_SET_PDEATHSIG``) and,
wherever that is not available or not certain, a thread in it checks a few times a
second whether it has been handed to another parent and ends it if so.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from joblib import cpu_count

from recommender.infra.faults import fault_point

TASKS_AHEAD = 3  # tasks in flight per worker
PARENT_CHECK_SECONDS = 0.25  # how often a worker checks that its parent lives

_PR_SET_PDEATHSIG = 1

Task = tuple[Callable[..., Any], tuple]


class WorkerDiedError(RuntimeError):
    """A worker process died (killed, out of memory): the machine, not the input."""


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
    stage : str, default "work"
        What the workers do, for the fault point ``<stage>-workers`` that tests kill
        this process at once the first result is in (:mod:`recommender.infra.faults`).
    """

    def __init__(self, n_jobs: int, who: str, stage: str = "work") -> None:
        if n_jobs < 1:
            raise ValueError(f"n_jobs must be at least 1, got {n_jobs}")
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
        self.n_jobs, self.who, self.stage = n_jobs, who, stage
        self._delivered = False
        # The kernel's signal follows the thread that forked the worker: certain only
        # for the main thread, which lives as long as the process.
        on_main_thread = threading.current_thread() is threading.main_thread()
        self._executor = ProcessPoolExecutor(
            n_jobs,
            mp_context=context,
            initializer=die_with_parent,
            initargs=(os.getpid(), on_main_thread),
        )

    def __enter__(self) -> OrderedPool:
        return self

    def __exit__(self, *exc_info) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    def results(self, tasks: Iterable[Task]) -> Iterator[Any]:
        """``function(*arguments)`` of each task, run by the workers, in task order.

        Raises
        ------
        WorkerDiedError
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
            result = future.result()
        except BrokenProcessPool as err:
            raise WorkerDiedError(
                f"{self.who} died ({err}); if memory is short, use fewer processes (--jobs)"
            ) from None
        if not self._delivered:  # the workers started, more tasks and results in flight
            self._delivered = True
            fault_point(f"{self.stage}-workers")
        return result


def die_with_parent(parent: int, signal_from_kernel: bool = True) -> None:
    """End this (worker) process when process ``parent`` ends; a pool's initializer.

    Parameters
    ----------
    parent : int
        The pid of the process that started this one.
    signal_from_kernel : bool, default True
        Also ask Linux for SIGKILL when the parent goes (``PR_SET_PDEATHSIG``): at
        once, even while this process holds the GIL. Only when the parent forked this
        one from its main thread: the signal comes when that thread ends.
    """
    if signal_from_kernel and sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the signal was asked for
        os._exit(1)
    watch = threading.Thread(target=_watch_parent, args=(parent,), daemon=True)
    watch.start()


def _watch_parent(parent: int) -> None:
    # An orphan is handed to init or a subreaper: its parent pid changes.
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_SECONDS)
    os._exit(1)
