"""The two kinds of query a ranking must win on: a trial as the registry holds it, and
the same trial reduced to a *thin record*.

Most of the registry extract (about 84% of its studies) and every draft typed into
``POST /similar`` carry only titles, summaries and a description; a ranking that wins
only when conditions, interventions, sponsor and eligibility are there wins for the
few. The quality table (``scripts/evaluate_ranking.py``) therefore scores every label
set twice: with each query as it is indexed (``"full"``) and with each query reduced
to :func:`thin_record` (``"thin"``); the trials ranked are the same in both.
"""

from __future__ import annotations

from recommender.core import TrialRecord
from recommender.text import PROSE_FIELDS

REGIMES: tuple[str, ...] = ("full", "thin")
#: What a thin record keeps: its titles, its summary and its description (the fields
#: a query record with no condition or intervention reads into those groups).
THIN_FIELDS: tuple[str, ...] = PROSE_FIELDS


def thin_record(record: TrialRecord) -> TrialRecord:
    """``record`` with its titles, summary and description only (the same NCT id)."""
    return TrialRecord(record.nct_id, **{name: getattr(record, name) for name in THIN_FIELDS})
