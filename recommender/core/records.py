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
from collections.abc import Iterable, Sequence
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


def distinct_texts(values: Iterable[str | None]) -> tuple[str, ...]:
    """``values`` with whitespace collapsed, empty ones dropped and each kept once,
    where it first occurs: a record's list of names (collaborators, officials,
    sites) as every reader gives it, however often the registry repeats one."""
    texts = (collapse_whitespace(value) for value in values)
    return tuple(dict.fromkeys(text for text in texts if text))


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
    only titles and texts. ``collaborators`` are the sponsor's collaborating
    organisations, ``officials`` the names of the study's overall officials (its
    principal investigators, chairs and directors, as the registry gives them) and
    ``sites`` the names of the facilities where it runs, each once, in the
    registry's order.
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
    collaborators: tuple[str, ...] = ()
    officials: tuple[str, ...] = ()
    sites: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "nct_id", validate_nct_id(self.nct_id))

    @property
    def title(self) -> str:
        """The registry's title: the brief title, else the official one (may be empty;
        :attr:`display_title` never is)."""
        return self.brief_title or self.official_title

    @property
    def display_title(self) -> DisplayTitle:
        """The title to show a person (see :func:`display_title`)."""
        return display_title(
            self.nct_id,
            self.brief_title,
            self.official_title,
            self.conditions,
            [i.name for i in self.interventions],
            self.brief_summary,
        )

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
            "collaborators",
            "officials",
            "sites",
        ):
            values[name] = tuple(data.get(name, ()))
        return cls(**values)


# Characters of a title made from a record or a query's text; longer is cut at a word.
MADE_TITLE_CHARS = 120
# Items of each list named in a made title; the rest are counted ("and 2 more").
_MADE_TITLE_ITEMS = 3
# A sentence ends at ".", "!" or "?" before a space and a capital or digit, unless
# the word before the stop is an abbreviation or an initial ("Dr. Smith", "J. Doe").
_SENTENCE_END = re.compile(r"(\S*)[.!?]\s+(?=[\"'(\[A-Z0-9])")
_NOT_AN_END = {"al", "approx", "dr", "e.g", "etc", "fig", "i.e", "inc", "mr", "mrs", "ms", "no",
               "prof", "st", "vs"}  # fmt: skip


@dataclass(frozen=True, slots=True)
class DisplayTitle:
    """A title to show a person, and whether it was made because the record has none.

    Attributes
    ----------
    text : str
        Never empty for a record.
    made : bool
        True when the record holds no title and ``text`` was made from its other
        fields: clients show it differently (the page in italics, the command line
        in brackets) so that no one takes it for the registry's title.
    """

    text: str
    made: bool = False


def display_title(
    nct_id: str,
    brief_title: str = "",
    official_title: str = "",
    conditions: Sequence[str] = (),
    interventions: Sequence[str] = (),
    summary: str = "",
) -> DisplayTitle:
    """The title every view shows for a trial (JSON, command line, pages, Python).

    The brief title, else the official title; a record without either (common in
    registry extracts: 3,449 of the 114,702 studies of the development corpus, 323 of the
    2,644 of its committed sample) gets one made
    from its conditions and interventions (``"Lung cancer: cisplatin; etoposide"``),
    else from the first sentence of its summary, else ``"Trial NCT..."``; a made
    title is marked ``made``.
    """
    title = collapse_whitespace(brief_title) or collapse_whitespace(official_title)
    if title:
        return DisplayTitle(title)
    made = _from_lists(conditions, interventions) or first_sentence(summary)
    return DisplayTitle(made or f"Trial {nct_id}", made=True)


def draft_record(
    *,
    title: str = "",
    official_title: str = "",
    acronym: str = "",
    summary: str = "",
    description: str = "",
    conditions: Sequence[str] = (),
    keywords: Sequence[str] = (),
    interventions: Sequence[str] = (),
) -> TrialRecord:
    """A trial that is not registered yet (a draft), as a record to compare with.

    It carries :data:`DRAFT_ID`; the fields go where a registered trial's do, so a
    draft's condition meets registered trials' conditions. Intervention names only.
    """
    return TrialRecord(
        DRAFT_ID,
        brief_title=title or "",
        official_title=official_title or "",
        acronym=acronym or "",
        brief_summary=summary or "",
        detailed_description=description or "",
        conditions=tuple(conditions),
        keywords=tuple(keywords),
        interventions=tuple(Intervention(name=name) for name in interventions if name),
    )


def draft_title(draft: TrialRecord, text: str | None = None) -> DisplayTitle:
    """The title shown for a draft query: its title, else the start of its free
    ``text``, else one made from its fields as for a record, else "Your draft trial"."""
    title = collapse_whitespace(draft.brief_title) or collapse_whitespace(draft.official_title)
    if title:
        return DisplayTitle(title)
    interventions = [i.name for i in draft.interventions]
    made = (
        shorten(text or "")
        or _from_lists(draft.conditions, interventions)
        or first_sentence(draft.brief_summary or draft.detailed_description)
    )
    return DisplayTitle(made or "Your draft trial", made=True)


def first_sentence(text: str, limit: int = MADE_TITLE_CHARS) -> str:
    """The first sentence of ``text``, cut at a word to at most ``limit`` characters."""
    text = collapse_whitespace(text)
    for end in _SENTENCE_END.finditer(text):
        word = end[1].lower().lstrip("(\"'")
        initial = len(word) == 1 and word.isalpha()
        if not initial and word not in _NOT_AN_END:
            text = text[: end.start() + len(end[1]) + 1]
            break
    return shorten(text, limit)


def shorten(text: str, limit: int = MADE_TITLE_CHARS) -> str:
    """``text`` cut at a word to at most ``limit`` characters, with an ellipsis."""
    text = collapse_whitespace(text)
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut).rstrip(" ,;:-") + "\u2026"


def _from_lists(conditions: Sequence[str], interventions: Sequence[str]) -> str:
    """``"Condition; condition: intervention; intervention"``, either part alone when
    the other list is empty; "" when both are. Items are separated by semicolons since
    many hold a comma ("Diabetes Mellitus, Type 2")."""
    parts = [_listed(conditions), _listed(interventions)]
    text = ": ".join(p for p in parts if p)
    return shorten(text[:1].upper() + text[1:]) if text else ""


def _listed(items: Sequence[str]) -> str:
    seen: dict[str, str] = {}
    for item in items:
        item = collapse_whitespace(item)
        if item and item.lower() not in seen:
            seen[item.lower()] = item
    shown = list(seen.values())
    if len(shown) <= _MADE_TITLE_ITEMS:
        return "; ".join(shown)
    return f"{'; '.join(shown[:_MADE_TITLE_ITEMS])} and {len(shown) - _MADE_TITLE_ITEMS} more"
