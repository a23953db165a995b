"""The records of an updated index, without decoding the ones it keeps.

An update of a thousand studies on an index of 600,000 used to decode every stored
record into a :class:`~recommender.core.records.TrialRecord` (ten seconds) only to find
the few it replaces and to hand the rest, unchanged, to the save. Here the kept
records stay where they are, in the base index's record store, and are read only
when asked for; the save links the files holding them (or copies their stored
lines) and takes their facets from the base's coded arrays.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import overload

import numpy as np

from recommender.core import RecordStore, TrialRecord, encode_record


class UpdatedRecords(Sequence[TrialRecord]):
    """Records in row order, each a kept record of the base index or a new one.

    Parameters
    ----------
    base : RecordStore
        The records of the index being updated.
    ids : ndarray of shape (n,), dtype <U11
        The NCT id of each row, ascending.
    source : ndarray of shape (n,), dtype int64
        Per row: the base row holding its record (>= 0, ascending among those rows),
        or ``-1 - j`` for ``new[j]``.
    new : list of TrialRecord
        The added and rewritten records.
    """

    def __init__(
        self, base: RecordStore, ids: np.ndarray, source: np.ndarray, new: list[TrialRecord]
    ) -> None:
        if len(ids) != len(source):
            raise ValueError(f"{len(ids)} ids for {len(source)} rows")
        self.base, self.ids, self.source, self.new = base, ids, source, new

    @property
    def base_rows(self) -> np.ndarray:
        """Per row, the base row whose record it is unchanged; -1 for a new record."""
        return np.where(self.source >= 0, self.source, -1)

    def __len__(self) -> int:
        return len(self.source)

    @overload
    def __getitem__(self, position: int) -> TrialRecord: ...

    @overload
    def __getitem__(self, position: slice) -> list[TrialRecord]: ...

    def __getitem__(self, position):
        if isinstance(position, slice):
            return [self[i] for i in range(*position.indices(len(self)))]
        at = int(self.source[position])
        return self.base[at] if at >= 0 else self.new[-1 - at]

    def __iter__(self) -> Iterator[TrialRecord]:
        for i in range(len(self)):
            yield self[i]

    def lines(self) -> Iterator[bytes]:
        """Each record as a stored JSON line: kept ones copied as the base stored them."""
        for at in self.source.tolist():
            yield self.base.line(at) if at >= 0 else encode_record(self.new[-1 - at])


def merge_ids(
    base_ids: np.ndarray, removed: Sequence[str], new: Sequence[TrialRecord]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rows of an update: ids, where each record comes from, and the old rows' new rows.

    Parameters
    ----------
    base_ids : ndarray of shape (n_old,), dtype <U11
        The base index's ids, ascending.
    removed : sequence of str
        Indexed ids to drop.
    new : sequence of TrialRecord
        Added records and new versions of indexed ones (at most one per id).

    Returns
    -------
    ids : ndarray of shape (n,), dtype <U11
    source : ndarray of shape (n,), dtype int64
        As :class:`UpdatedRecords` takes it (``new[j]`` as ``-1 - j``).
    old_to_new : ndarray of shape (n_old,), dtype int64
        Each base row's row in the update, -1 when removed.
    """
    base_ids = np.asarray(base_ids)
    new_ids = np.asarray([r.nct_id for r in new], dtype=base_ids.dtype)
    kept = ~np.isin(base_ids, np.asarray(list(removed), dtype=base_ids.dtype))
    ids = np.union1d(base_ids[kept], new_ids)
    old_to_new = np.full(len(base_ids), -1, dtype=np.int64)
    old_to_new[kept] = np.searchsorted(ids, base_ids[kept])
    source = np.full(len(ids), 0, dtype=np.int64)
    source[old_to_new[kept]] = np.flatnonzero(kept)
    source[np.searchsorted(ids, new_ids)] = -1 - np.arange(len(new_ids))
    return ids, source, old_to_new
