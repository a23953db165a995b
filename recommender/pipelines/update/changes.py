"""How the incoming records differ from the indexed ones: added, replaced, stale
(older than the indexed record, ignored) and removed (a snapshot lacks them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from recommender.core import TrialRecord
from recommender.index import TrialIndex, UpdatedRecords
from recommender.index.updated_records import merge_ids


@dataclass
class Changes:
    """How the incoming records differ from the indexed ones."""

    added: list[TrialRecord] = field(default_factory=list)
    replaced: list[tuple[TrialRecord, TrialRecord]] = field(default_factory=list)  # old, new
    stale: list[tuple[TrialRecord, TrialRecord]] = field(default_factory=list)  # kept, older
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    snapshot: bool = False

    @property
    def any(self) -> bool:
        return bool(self.added or self.replaced or self.removed)


def classify(
    indexed: Sequence[TrialRecord],
    indexed_ids: np.ndarray,
    incoming: Sequence[TrialRecord],
    *,
    snapshot: bool,
) -> Changes:
    """Sort incoming records into added, replaced, stale and unchanged ones.

    A record equal to the indexed one is unchanged. One whose last-update date is
    older than the indexed record's is *stale* and ignored (an old download passed
    by mistake must not undo newer data). With ``snapshot``, indexed studies absent
    from ``incoming`` are removed. ``indexed`` (the index's records, in the order of
    the ascending ``indexed_ids``) is read only where an incoming id is found.
    """
    indexed_ids = np.asarray(indexed_ids)
    incoming_ids = np.asarray([r.nct_id for r in incoming], dtype=indexed_ids.dtype)
    rows = np.searchsorted(indexed_ids, incoming_ids).tolist()
    changes = Changes(snapshot=snapshot)
    for record, row in zip(incoming, rows, strict=True):
        found = row < len(indexed_ids) and indexed_ids[row] == record.nct_id
        old = indexed[row] if found else None
        if old is None:
            changes.added.append(record)
        elif old == record:
            changes.unchanged += 1
        elif _older(record.last_update_date, old.last_update_date):
            changes.stale.append((old, record))
        else:
            changes.replaced.append((old, record))
    if snapshot:
        changes.removed = indexed_ids[~np.isin(indexed_ids, incoming_ids)].tolist()
    return changes


def _older(date: str | None, than: str | None) -> bool:
    """Whether ISO date ``date`` is before ``than``, compared at their common precision."""
    if not date or not than:
        return False
    common = min(len(date), len(than))
    return date[:common] < than[:common]


def merge_records(base: TrialIndex, changes: Changes) -> tuple[UpdatedRecords, np.ndarray]:
    """The updated records sorted by id, and each indexed record's new row (-1: removed).

    The kept records are not decoded: they are read from ``base`` when asked for.
    """
    new = [record for _, record in changes.replaced] + changes.added
    ids, source, old_to_new = merge_ids(base.ids, changes.removed, new)
    return UpdatedRecords(base.records, ids, source, new), old_to_new
