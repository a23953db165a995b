"""What can be wrong with an index folder, or with a trial asked of it."""

from __future__ import annotations


class TrialIndexError(Exception):
    """Base class of the problems an index folder can have."""


class DamagedIndexError(TrialIndexError):
    """The folder is not a complete, intact index of a version this code reads."""


class NotInIndexError(KeyError, TrialIndexError):
    """The trial asked for is not in this index."""

    def __str__(self) -> str:
        return str(self.args[0])


class WriterConflictError(TrialIndexError):
    """Another writer is working on this index, or worked on it meanwhile."""


class IndexBusyError(WriterConflictError):
    """Another build or update holds the index's writer lock."""


class IndexChangedError(WriterConflictError):
    """The index served changed while this writer ran: serving its version would lose that."""
