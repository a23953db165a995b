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
