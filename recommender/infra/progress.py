"""Progress of long stages: a tqdm bar on a terminal, plain lines in a log.

A tqdm bar redraws itself with carriage returns; written to a file or a pipe
(``recommender build ... 2> build.log``, a CI job, systemd's journal) it becomes one
endless line. :func:`progress` gives a bar when the stream is a terminal and
otherwise a :class:`PlainProgress`, which writes a line now and then and one when
the stage ends:

.. code-block:: text

    ctg-studies.json.zip: 40,233 of 114,697 items (35%), 30 s
    ctg-studies.json.zip: 114,697 items in 74.2 s
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

from tqdm import tqdm

#: Seconds between two progress lines in a log.
DEFAULT_LINE_INTERVAL = 30.0


class PlainProgress:
    """A progress counter that writes whole lines, for streams that are not terminals.

    Used like the part of tqdm the build uses: iterate over it, or call
    :meth:`update` and :meth:`close` (or use it as a context manager).

    Parameters
    ----------
    iterable : iterable, optional
        What to count while iterating.
    total : int, optional
        Expected count, for the percentage.
    desc : str
        The stage's name, at the start of each line.
    unit : str
        What is counted, in the plural (``"items"``, ``"trials"``).
    file : text stream
        Where lines go.
    interval : float, default 30
        Seconds between two lines while the stage runs.
    clock : callable, default time.monotonic
    """

    def __init__(
        self,
        iterable: Iterable[Any] | None = None,
        *,
        total: int | None = None,
        desc: str,
        unit: str,
        file: IO[str],
        interval: float = DEFAULT_LINE_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.iterable = iterable
        self.total = total
        self.desc = desc
        self.unit = unit.strip()
        self.file = file
        self.interval = interval
        self.clock = clock
        self.n = 0
        self.started = clock()
        self._last_line = self.started
        self._closed = False

    def __iter__(self) -> Iterator[Any]:
        if self.iterable is None:
            raise TypeError("PlainProgress was made without an iterable")
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def update(self, n: int = 1) -> None:
        """Count ``n`` more; write a line when ``interval`` has passed since the last."""
        self.n += n
        now = self.clock()
        if now - self._last_line >= self.interval:
            self._last_line = now
            of = f" of {self.total:,}" if self.total else ""
            share = f" ({100 * self.n / self.total:.0f}%)" if self.total else ""
            self._write(f"{self.n:,}{of} {self.unit}{share}, {now - self.started:.0f} s")

    def close(self) -> None:
        """Write the stage's last line (once)."""
        if not self._closed:
            self._closed = True
            self._write(f"{self.n:,} {self.unit} in {self.clock() - self.started:.1f} s")

    def _write(self, text: str) -> None:
        print(f"{self.desc}: {text}", file=self.file, flush=True)

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def is_terminal(stream: IO[str]) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def progress(
    iterable: Iterable[Any] | None = None,
    *,
    total: int | None = None,
    desc: str,
    unit: str,
    file: IO[str] | None = None,
) -> tqdm | PlainProgress:
    """A tqdm bar on ``file`` (stderr by default) when it is a terminal, else plain lines.

    Parameters
    ----------
    iterable : iterable, optional
        Counted while iterated over the result; otherwise call ``update(n)``.
    total : int, optional
        Expected count.
    desc : str
        Name of the stage.
    unit : str
        What is counted, plural.
    file : text stream, optional
        Defaults to ``sys.stderr`` at call time (so a redirected stderr is honoured).
    """
    stream = file if file is not None else sys.stderr
    if is_terminal(stream):
        return tqdm(iterable, total=total, desc=desc, unit=f" {unit.strip()}", file=stream)
    return PlainProgress(iterable, total=total, desc=desc, unit=unit, file=stream)
