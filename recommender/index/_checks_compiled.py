"""The compiled half of the load-time checks (:mod:`recommender.index.checks`).

The column indices of the vectors and the postings are what the search and
explanation kernels index their arrays with: one value out of range is a read out of
bounds, which kills the process (SIGSEGV) instead of raising. Checking them reads the
largest arrays of an index once; a compiled loop does it at memory speed, with no
temporary array, and without the GIL, so that threads share it out.
"""

from __future__ import annotations

from numba import njit


@njit(nogil=True, cache=True)
def first_outside(values, start, stop, upper):
    """Position of the first of ``values[start:stop]`` outside ``[0, upper)``, or -1.

    Parameters
    ----------
    values : ndarray of shape (m,), integer
    start, stop : int
        The run to check (a thread's share).
    upper : int
        One more than the largest value allowed.
    """
    for i in range(start, stop):
        value = values[i]
        if value < 0 or value >= upper:
            return i
    return -1
