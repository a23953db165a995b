"""The few fields of a stored record that a result shows, decoded without the rest.

A stored record line holds the whole trial (summaries, descriptions, eligibility
criteria: several kB). A result shows its title, conditions, intervention names,
phases and status. msgspec decodes a line into :class:`DisplayRecord` skipping the
other fields' values without building them, several times faster than decoding a
whole :class:`~recommender.core.records.TrialRecord`. The brief summary is decoded
too (about 0.1 µs a record): a record without a title gets one made from it when it
has no conditions or interventions either.
"""

from __future__ import annotations

import msgspec

from recommender.core import DisplayTitle, display_title


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
    brief_summary: str = ""

    @property
    def display_title(self) -> DisplayTitle:
        """As ``TrialRecord.display_title``: the title shown, made when there is none."""
        return display_title(
            self.nct_id,
            self.brief_title,
            self.official_title,
            self.conditions,
            self.intervention_names,
            self.brief_summary,
        )

    @property
    def title(self) -> str:
        """The text of :attr:`display_title` (made anew at each call: read it once)."""
        return self.display_title.text

    @property
    def intervention_names(self) -> list[str]:
        return [i.name for i in self.interventions]


_DECODER = msgspec.json.Decoder(DisplayRecord)


def decode_display(line: bytes) -> DisplayRecord:
    """A stored record line (``records.jsonl``) read as a :class:`DisplayRecord`.

    Raises ``msgspec.DecodeError`` (``ValidationError``) for a line that is not a record.
    """
    return _DECODER.decode(line)
