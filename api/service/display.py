"""The few fields of a stored record that a result shows, decoded without the rest.

A stored record line holds the whole trial (summaries, descriptions, eligibility
criteria: several kB). A result shows its title, conditions, intervention names,
phases and status. msgspec decodes a line into :class:`DisplayRecord` skipping the
other fields' values without building them, several times faster than decoding a
whole :class:`~recommender.core.records.TrialRecord`.
"""

from __future__ import annotations

import msgspec


class _NamedIntervention(msgspec.Struct):
    name: str


class DisplayRecord(msgspec.Struct, frozen=True):
    """What a result shows of a trial (the names are the stored record's)."""

    nct_id: str
    brief_title: str = ""
    official_title: str = ""
    conditions: list[str] = []
    interventions: list[_NamedIntervention] = []
    phases: list[str] = []
    overall_status: str | None = None

    @property
    def title(self) -> str:
        """As ``TrialRecord.title``: the brief title, else the official one."""
        return self.brief_title or self.official_title

    @property
    def intervention_names(self) -> list[str]:
        return [i.name for i in self.interventions]


_DECODER = msgspec.json.Decoder(DisplayRecord)


def decode_display(line: bytes) -> DisplayRecord:
    """A stored record line (``records.jsonl``) read as a :class:`DisplayRecord`.

    Raises ``msgspec.DecodeError`` (``ValidationError``) for a line that is not a record.
    """
    return _DECODER.decode(line)
