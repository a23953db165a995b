"""Reader of ClinicalTrials.gov legacy XML records (schema ``public.xsd``).

The registry's old bulk download ``AllPublicXML.zip`` holds one
``NCTddddxxxx/NCTdddddddd.xml`` per study. This module turns one such record into
a :class:`TrialRecord` in the API v2 vocabulary, so that a study reads the same
from either format:

* enumerations: ``"Active, not recruiting"`` -> ``ACTIVE_NOT_RECRUITING``,
  ``"Phase 1/Phase 2"`` -> ``("PHASE1", "PHASE2")``, ``"N/A"`` -> ``("NA",)``;
* dates: ``"March 2000"`` -> ``"2000-03"``, ``"January 18, 2000"`` -> ``"2000-01-18"``;
* arm intervention names: XML links interventions to arms from the intervention
  side (``intervention/arm_group_label``); API v2 lists them on the arm as
  ``"Drug: Nifedipine"``, which is rebuilt here.

Documents with a DTD are refused: registry records never carry one, and refusing
it rules out entity-expansion tricks.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterator
from os import PathLike
from pathlib import Path
from xml.parsers import expat

from recommender.core import (
    ArmGroup,
    Intervention,
    InvalidNctIdError,
    TrialRecord,
    collapse_whitespace,
    distinct_texts,
    validate_nct_id,
)
from recommender.ingest.containers import (
    list_files,
    named_as_study,
    open_zip,
    read_file,
    read_member,
    zip_members,
)
from recommender.ingest.errors import (
    NotAStudyError,
    Outcome,
    RecordError,
    SourceError,
    one_line,
    unexpected,
)
from recommender.ingest.limits import DEFAULT_LIMITS, ReadLimits, size_refusal

XML_SUFFIX = ".xml"
ROOT_TAG = "clinical_study"

# Values whose API v2 spelling is not the generic upper-case-and-underscore one.
_SPECIAL_CODES = {
    "Unknown status": "UNKNOWN",
    "N/A": "NA",
    "Early Phase 1": "EARLY_PHASE1",
    "Phase 0": "EARLY_PHASE1",  # the registry's former name for Early Phase 1
    # API v2 has one OBSERVATIONAL type; the registry flag is a separate field there.
    "Observational [Patient Registry]": "OBSERVATIONAL",
}
_PHASE_NUMBER = re.compile(r"Phase (\d)")
_NON_ALNUM = re.compile(r"[^A-Z0-9]+")
_MONTHS = {
    name: number
    for number, name in enumerate(
        [
            "january",
            "february",
            "march",
            "april",
            "may",
            "june",
            "july",
            "august",
            "september",
            "october",
            "november",
            "december",
        ],
        start=1,
    )
}
_DATE = re.compile(r"([A-Za-z]+)\.?\s+(?:(\d{1,2}),\s*)?(\d{4})")


# --- values ----------------------------------------------------------------------------


def to_code(value: str | None) -> str | None:
    """Translate an XML enumeration value into API v2 spelling.

    ``"Active, not recruiting"`` -> ``"ACTIVE_NOT_RECRUITING"``, ``"Dietary
    Supplement"`` -> ``"DIETARY_SUPPLEMENT"``, ``"Phase 2"`` -> ``"PHASE2"``; the
    generic rule is upper case with runs of other characters turned into ``_``.
    ``None`` or blank gives ``None``.
    """
    text = collapse_whitespace(value)
    if not text:
        return None
    if text in _SPECIAL_CODES:
        return _SPECIAL_CODES[text]
    phase = _PHASE_NUMBER.fullmatch(text)
    if phase:
        return f"PHASE{phase.group(1)}"
    return _NON_ALNUM.sub("_", text.upper()).strip("_") or None


def to_phases(value: str | None) -> tuple[str, ...]:
    """``"Phase 1/Phase 2"`` -> ``("PHASE1", "PHASE2")``; ``"N/A"`` -> ``("NA",)``."""
    text = collapse_whitespace(value)
    if not text:
        return ()
    if text in _SPECIAL_CODES:  # "N/A" holds a slash but is one value
        return (_SPECIAL_CODES[text],)
    codes = (to_code(part) for part in text.split("/"))
    return tuple(code for code in codes if code)


def to_iso_date(value: str | None) -> str | None:
    """``"March 2000"`` -> ``"2000-03"``, ``"January 18, 2000"`` -> ``"2000-01-18"``.

    ``None`` for a blank or unparseable date: a date is not worth losing the record
    for, and anything but ISO would mislead readers of the field.
    """
    match = _DATE.fullmatch(collapse_whitespace(value))
    if not match:
        return None
    month = _MONTHS.get(match.group(1).lower())
    if month is None:
        return None
    day, year = match.group(2), match.group(3)
    return f"{year}-{month:02d}-{int(day):02d}" if day else f"{year}-{month:02d}"


def type_label(code: str | None) -> str:
    """API v2 display form of a type: ``DIETARY_SUPPLEMENT`` -> ``Dietary Supplement``.

    This is how the registry prefixes arm intervention names (``"Drug: Nifedipine"``).
    """
    return (code or "").replace("_", " ").title()


# --- parsing ---------------------------------------------------------------------------


def _refuse_dtd(*_args: object) -> None:
    """Expat handler that stops parsing at a DOCTYPE or entity declaration."""
    raise RecordError("XML with a DTD or entity declarations is not accepted")


def parse_xml(data: bytes) -> ET.Element:
    """Parse XML bytes into an element tree, refusing DTDs.

    Expat is driven directly (rather than via ``ET.fromstring``) because only its
    handlers can refuse a DOCTYPE before any entity is expanded; it is also faster.

    Raises
    ------
    RecordError
        For malformed XML or a document with a DTD.
    """
    builder = ET.TreeBuilder()
    parser = expat.ParserCreate()
    parser.buffer_text = True
    parser.StartElementHandler = builder.start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    parser.StartDoctypeDeclHandler = _refuse_dtd
    parser.EntityDeclHandler = _refuse_dtd
    try:
        parser.Parse(data, True)
    except expat.ExpatError as err:
        raise RecordError(f"invalid XML: {one_line(err)}") from err
    return builder.close()


def _text(element: ET.Element, path: str) -> str:
    """Collapsed text of the first element at ``path`` (``""`` if absent)."""
    found = element.find(path)
    return collapse_whitespace(found.text) if found is not None else ""


def _texts(element: ET.Element, path: str) -> tuple[str, ...]:
    """Collapsed texts of every element at ``path``, empty ones dropped."""
    texts = (collapse_whitespace(found.text) for found in element.iterfind(path))
    return tuple(text for text in texts if text)


def _nct_id(root: ET.Element) -> str:
    """The record's validated NCT id."""
    found = root.find("id_info/nct_id")
    if found is None:
        raise RecordError("no id_info/nct_id")
    try:
        return validate_nct_id(found.text or "")
    except InvalidNctIdError as err:
        raise RecordError(f"invalid nct_id: {err}") from err


def _interventions(root: ET.Element) -> list[tuple[Intervention, tuple[str, ...]]]:
    """Each intervention with the arm labels it lists (``arm_group_label``)."""
    interventions = []
    for element in root.iterfind("intervention"):
        intervention = Intervention(
            name=_text(element, "intervention_name"),
            type=to_code(_text(element, "intervention_type")),
            other_names=_texts(element, "other_name"),
            description=_text(element, "description"),
        )
        if intervention != Intervention(name=""):
            interventions.append((intervention, _texts(element, "arm_group_label")))
    return interventions


def _arm_intervention_name(intervention: Intervention) -> str:
    """How API v2 names an intervention on an arm: ``"Drug: Nifedipine"``."""
    if not intervention.type:
        return intervention.name
    return f"{type_label(intervention.type)}: {intervention.name}"


def _arm_groups(
    root: ET.Element, interventions: list[tuple[Intervention, tuple[str, ...]]]
) -> tuple[ArmGroup, ...]:
    """The arms, each with ``"Type: Name"`` of the interventions that list its label."""
    arms = []
    for element in root.iterfind("arm_group"):
        label = _text(element, "arm_group_label")
        names = tuple(
            _arm_intervention_name(intervention)
            for intervention, labels in interventions
            if label and label in labels
        )
        arm = ArmGroup(
            label=label,
            type=to_code(_text(element, "arm_group_type")),
            description=_text(element, "description"),
            intervention_names=names,
        )
        if arm != ArmGroup(label=""):
            arms.append(arm)
    return tuple(arms)


def parse_study_xml(data: bytes) -> TrialRecord:
    """Build a :class:`TrialRecord` from one legacy XML record.

    Parameters
    ----------
    data
        The bytes of one ``<clinical_study>`` document.

    Returns
    -------
    TrialRecord
        The study's record, with enumerations and dates in API v2 form.

    Raises
    ------
    RecordError
        For malformed XML, a DTD, a missing or invalid ``id_info/nct_id``; its
        subclass :class:`NotAStudyError` for a root other than ``<clinical_study>``.
    """
    root = parse_xml(data)
    if root.tag != ROOT_TAG:
        raise NotAStudyError(f"not a study: root element <{root.tag}>, expected <{ROOT_TAG}>")
    interventions = _interventions(root)
    return TrialRecord(
        nct_id=_nct_id(root),
        brief_title=_text(root, "brief_title"),
        official_title=_text(root, "official_title"),
        acronym=_text(root, "acronym"),
        brief_summary=_text(root, "brief_summary/textblock"),
        detailed_description=_text(root, "detailed_description/textblock"),
        conditions=_texts(root, "condition"),
        keywords=_texts(root, "keyword"),
        interventions=tuple(intervention for intervention, _ in interventions),
        arm_groups=_arm_groups(root, interventions),
        condition_mesh_terms=_texts(root, "condition_browse/mesh_term"),
        intervention_mesh_terms=_texts(root, "intervention_browse/mesh_term"),
        phases=to_phases(_text(root, "phase")),
        overall_status=to_code(_text(root, "overall_status")),
        study_type=to_code(_text(root, "study_type")),
        start_date=to_iso_date(_text(root, "start_date")),
        lead_sponsor=_text(root, "sponsors/lead_sponsor/agency") or None,
        eligibility_criteria=_text(root, "eligibility/criteria/textblock"),
        last_update_date=to_iso_date(_text(root, "last_update_posted")),
        collaborators=distinct_texts(_texts(root, "sponsors/collaborator/agency")),
        # The legacy format puts an official's whole name in <last_name>.
        officials=distinct_texts(_texts(root, "overall_official/last_name")),
        sites=distinct_texts(_texts(root, "location/facility/name")),
    )


def _outcome(raw: bytes | RecordError, name: str, *, whole_file: bool = False) -> Outcome:
    """The outcome of one XML item whose bytes (or read error) are ``raw``.

    A file of a folder or zip (``whole_file``) whose root is not a study and whose
    name is not a trial's keeps its :class:`NotAStudyError` (listed as ignored);
    anywhere else that is an ordinary skipped item.
    """
    if isinstance(raw, RecordError):
        return name, raw
    try:
        return name, parse_study_xml(raw)
    except NotAStudyError as err:
        if whole_file and not named_as_study(name):
            return name, err
        return name, RecordError(str(err))
    except RecordError as err:
        return name, err
    except Exception as err:  # one malformed record never stops a read
        return name, unexpected(err)


# --- containers --------------------------------------------------------------------------


def iter_xml_zip(
    path: str | PathLike[str], limits: ReadLimits = DEFAULT_LIMITS
) -> Iterator[Outcome]:
    """Yield an outcome per ``.xml`` member of a zip (the ``AllPublicXML.zip`` layout).

    Members are read in archive order; directories and other members are passed
    over. A damaged member, or one that unpacks to more than
    ``limits.max_file_bytes``, is one skipped item.

    Raises
    ------
    SourceError
        If the file is missing or not a zip archive.
    """
    with open_zip(path) as archive:
        for info in zip_members(archive, XML_SUFFIX):
            yield from member_outcomes(archive, info, limits)


def member_outcomes(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, limits: ReadLimits
) -> Iterator[Outcome]:
    """The outcome of one ``.xml`` member of a zip, as :func:`iter_xml_zip` reads it."""
    raw = read_member(archive, info, limits.max_file_bytes)
    yield _outcome(raw, info.filename, whole_file=True)


def iter_xml_dir(
    path: str | PathLike[str], limits: ReadLimits = DEFAULT_LIMITS
) -> Iterator[Outcome]:
    """Yield an outcome per ``*.xml`` file under a folder (recursively), by sorted path.

    Items are named by their path relative to the folder; every ``.xml`` file is
    read, so one that is not a study is reported (as ignored, when its root is not
    ``<clinical_study>`` and its name not a trial's) rather than passed over. A file
    over ``limits.max_file_bytes`` is a skipped item, unread.
    """
    root = Path(path)
    for file in list_files(root, XML_SUFFIX):
        yield from file_outcomes(root, file, limits)


def file_outcomes(root: Path, file: Path, limits: ReadLimits) -> Iterator[Outcome]:
    """The outcome of one ``.xml`` file of a folder, as :func:`iter_xml_dir` reads it."""
    raw = read_file(file, limits.max_file_bytes)
    yield _outcome(raw, file.relative_to(root).as_posix(), whole_file=True)


def iter_xml_file(
    path: str | PathLike[str], limits: ReadLimits = DEFAULT_LIMITS
) -> Iterator[Outcome]:
    """Yield the outcome of one ``.xml`` file; one over ``limits.max_file_bytes`` is skipped.

    Raises
    ------
    SourceError
        If the file is missing or unreadable.
    """
    source = Path(path)
    try:
        too_large = size_refusal(source.stat().st_size, limits.max_file_bytes, "file")
    except OSError as err:
        raise SourceError(f"{source}: {one_line(err)}") from err
    if too_large:
        yield source.name, RecordError(too_large)
        return
    raw = read_file(source, limits.max_file_bytes)
    if isinstance(raw, RecordError):
        raise SourceError(f"{source}: {raw}")
    yield _outcome(raw, source.name)
