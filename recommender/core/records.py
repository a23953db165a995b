"""The one record type every registry reader produces: :class:`TrialRecord`.

Enumerated values (status, phases, study type, intervention and arm types) use the
registry's API v2 spelling (``RECRUITING``, ``PHASE1``, ``INTERVENTIONAL``, ``DRUG``,
``PLACEBO_COMPARATOR``); readers of older formats translate into it. Dates are ISO
strings at the precision the registry gives (``2016-02`` or ``2016-02-17``). Free
text has its whitespace collapsed to single spaces, so the same study read from two
formats compares equal.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields
from typing import Any

NCT_ID_PATTERN = re.compile(r"NCT[0-9]{8}")  # not \d, which admits non-ASCII digits
# An id as a person may type it, which validate_nct_id accepts: any case, spaces around.
NCT_ID_INPUT_PATTERN = r"^\s*[Nn][Cc][Tt][0-9]{8}\s*$"
# The id a not-yet-registered query trial (a draft, a posted text) carries inside the
# engine; never shown, and never a registry id (numbering starts at NCT00000102).
DRAFT_ID = "NCT00000000"


class InvalidNctIdError(ValueError):
    """Raised for a string that is not a ClinicalTrials.gov identifier."""


def validate_nct_id(value: object) -> str:
    """Return ``value`` as a canonical NCT id or raise :class:`InvalidNctIdError`.

    Surrounding whitespace and lower case are forgiven (``" nct05940610"``), anything
    else is not: an NCT id is ``NCT`` followed by exactly eight digits.
    """
    if not isinstance(value, str):
        raise InvalidNctIdError(f"an NCT id must be a string, got {type(value).__name__}")
    candidate = value.strip().upper()
    if not NCT_ID_PATTERN.fullmatch(candidate):
        shown = value if len(value) <= 40 else value[:37] + "..."
        raise InvalidNctIdError(f"{shown!r} is not an NCT id (expected 'NCT' and 8 digits)")
    return candidate


def collapse_whitespace(text: str | None) -> str:
    """Collapse every run of whitespace to one space and strip the ends."""
    if not text:
        return ""
    # Most registry texts are already collapsed; the check (all whitespace in
    # a printable string is " ") is several times cheaper than splitting them.
    if text.isprintable() and "  " not in text and text[0] != " " and text[-1] != " ":
        return text
    return " ".join(text.split())


@dataclass(frozen=True, slots=True)
class Intervention:
    """One intervention of a trial (``armsInterventionsModule.interventions[]``)."""

    name: str
    type: str | None = None
    other_names: tuple[str, ...] = ()
    description: str = ""


@dataclass(frozen=True, slots=True)
class ArmGroup:
    """One arm or cohort of a trial (``armsInterventionsModule.armGroups[]``)."""

    label: str
    type: str | None = None
    description: str = ""
    intervention_names: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TrialRecord:
    """A registered trial, as far as the recommender needs it.

    Every field but ``nct_id`` may be empty: most studies of a bulk download carry
    only titles and texts.
    """

    nct_id: str
    brief_title: str = ""
    official_title: str = ""
    acronym: str = ""
    brief_summary: str = ""
    detailed_description: str = ""
    conditions: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    interventions: tuple[Intervention, ...] = ()
    arm_groups: tuple[ArmGroup, ...] = ()
    condition_mesh_terms: tuple[str, ...] = ()
    intervention_mesh_terms: tuple[str, ...] = ()
    phases: tuple[str, ...] = ()
    overall_status: str | None = None
    study_type: str | None = None
    start_date: str | None = None
    lead_sponsor: str | None = None
    eligibility_criteria: str = ""
    last_update_date: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "nct_id", validate_nct_id(self.nct_id))

    @property
    def title(self) -> str:
        """The title to show a person: the brief title, else the official one."""
        return self.brief_title or self.official_title

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (tuples become lists); inverse of :meth:`from_dict`."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrialRecord:
        """Rebuild a record from :meth:`to_dict` output; unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown TrialRecord fields: {sorted(unknown)}")
        values = dict(data)
        values["interventions"] = tuple(
            Intervention(**{**i, "other_names": tuple(i.get("other_names", ()))})
            for i in data.get("interventions", ())
        )
        values["arm_groups"] = tuple(
            ArmGroup(**{**a, "intervention_names": tuple(a.get("intervention_names", ()))})
            for a in data.get("arm_groups", ())
        )
        for name in (
            "conditions",
            "keywords",
            "condition_mesh_terms",
            "intervention_mesh_terms",
            "phases",
        ):
            values[name] = tuple(data.get(name, ()))
        return cls(**values)
