"""One ClinicalTrials.gov API v2 study, read into a :class:`TrialRecord`.

A study is ``{"protocolSection": {...}, "derivedSection": {...}}``; every field is
read with its JSON type checked, so a damaged study is refused with the path of the
field at fault (``protocolSection.conditionsModule.conditions: expected a list, got
a string``). The documents and containers studies come in are
:mod:`recommender.ingest.ctgov_json`'s.
"""

from __future__ import annotations

from typing import Any

from recommender.core import (
    ArmGroup,
    Intervention,
    InvalidNctIdError,
    TrialRecord,
    collapse_whitespace,
    distinct_texts,
    validate_nct_id,
)
from recommender.ingest.errors import RecordError

_KIND_NAMES = {dict: "an object", list: "a list", str: "a string"}

#: Top-level keys of an API v2 study (and ``studies`` of a page): a JSON object with
#: none of them is not a damaged study but some other kind of file.
STUDY_KEYS = frozenset(
    {
        "protocolSection",
        "derivedSection",
        "resultsSection",
        "annotationSection",
        "documentSection",
        "hasResults",
        "studies",
    }
)


# --- typed access with a path for the error message ----------------------------------


def _kind(value: object) -> str:
    """The JSON name of ``value``'s type, for error messages."""
    names = {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number" if isinstance(value, int | float) else "value")


def _get(mapping: dict[str, Any], key: str, where: str, kind: type) -> Any:
    """``mapping[key]`` if it is a ``kind``, ``None`` if absent or null, else RecordError."""
    value = mapping.get(key)
    if value is None or isinstance(value, kind):
        return value
    raise RecordError(f"{where}.{key}: expected {_KIND_NAMES[kind]}, got {_kind(value)}")


def _obj(mapping: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    """A nested object; a missing module reads as empty (most studies lack most modules)."""
    return _get(mapping, key, where, dict) or {}


def _text(mapping: dict[str, Any], key: str, where: str) -> str:
    """Free text with whitespace collapsed; ``""`` when absent."""
    return collapse_whitespace(_get(mapping, key, where, str))


def _code(mapping: dict[str, Any], key: str, where: str) -> str | None:
    """A short value (enumeration, date, name) kept as given; ``None`` when absent or blank."""
    return collapse_whitespace(_get(mapping, key, where, str)) or None


def _texts(mapping: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    """A list of strings, each collapsed, empty entries dropped."""
    values = _get(mapping, key, where, list) or []
    for index, value in enumerate(values):
        if not isinstance(value, str):
            raise RecordError(f"{where}.{key}[{index}]: expected a string, got {_kind(value)}")
    return tuple(text for text in map(collapse_whitespace, values) if text)


def _objs(mapping: dict[str, Any], key: str, where: str) -> list[tuple[str, dict[str, Any]]]:
    """A list of objects, each with its path for later error messages."""
    values = _get(mapping, key, where, list) or []
    items = []
    for index, value in enumerate(values):
        path = f"{where}.{key}[{index}]"
        if not isinstance(value, dict):
            raise RecordError(f"{path}: expected an object, got {_kind(value)}")
        items.append((path, value))
    return items


# --- one study -------------------------------------------------------------------------


def not_a_study(data: object) -> RecordError:
    """The error for a JSON value that is not shaped like a study at all."""
    if not isinstance(data, dict):
        return RecordError(f"not a study: expected a JSON object, got {_kind(data)}")
    keys = ", ".join(repr(key) for key in list(data)[:5]) or "none"
    return RecordError(f"not a study: a JSON object without 'protocolSection' (keys: {keys})")


def plainly_not_a_study(document: object) -> bool:
    """Whether a decoded JSON document is not registry data at all, rather than a broken study.

    True for a scalar and for an object without any of :data:`STUDY_KEYS` (a label
    file such as ``{"NCT05940610": ["NCT05881668", ...]}``); a list is judged entry
    by entry instead.
    """
    if isinstance(document, dict):
        return STUDY_KEYS.isdisjoint(document)
    return not isinstance(document, list)


def _nct_id(identification: dict[str, Any]) -> str:
    """The study's validated NCT id."""
    value = identification.get("nctId")
    if value is None:
        raise RecordError("no protocolSection.identificationModule.nctId")
    try:
        return validate_nct_id(value)
    except InvalidNctIdError as err:
        raise RecordError(f"invalid nctId: {err}") from err


def _interventions(arms_module: dict[str, Any], where: str) -> tuple[Intervention, ...]:
    """``armsInterventionsModule.interventions[]``; entries without any content are dropped."""
    interventions = []
    for path, item in _objs(arms_module, "interventions", where):
        intervention = Intervention(
            name=_text(item, "name", path),
            type=_code(item, "type", path),
            other_names=_texts(item, "otherNames", path),
            description=_text(item, "description", path),
        )
        if intervention != Intervention(name=""):
            interventions.append(intervention)
    return tuple(interventions)


def _arm_groups(arms_module: dict[str, Any], where: str) -> tuple[ArmGroup, ...]:
    """``armsInterventionsModule.armGroups[]``; ``interventionNames`` kept as given."""
    arms = []
    for path, item in _objs(arms_module, "armGroups", where):
        arm = ArmGroup(
            label=_text(item, "label", path),
            type=_code(item, "type", path),
            description=_text(item, "description", path),
            intervention_names=_texts(item, "interventionNames", path),
        )
        if arm != ArmGroup(label=""):
            arms.append(arm)
    return tuple(arms)


def _names(module: dict[str, Any], key: str, field: str, where: str) -> tuple[str, ...]:
    """``<module>.<key>[].<field>`` (a collaborator's ``name``, a location's
    ``facility``), collapsed, empty and repeated names dropped."""
    return distinct_texts(_text(item, field, path) for path, item in _objs(module, key, where))


def _mesh_terms(derived: dict[str, Any], module: str) -> tuple[str, ...]:
    """``derivedSection.<module>.meshes[].term``, collapsed, empty terms dropped."""
    where = f"derivedSection.{module}"
    meshes = _objs(_obj(derived, module, "derivedSection"), "meshes", where)
    terms = (collapse_whitespace(_get(mesh, "term", path, str)) for path, mesh in meshes)
    return tuple(term for term in terms if term)


def parse_study(data: object) -> TrialRecord:
    """Build a :class:`TrialRecord` from one API v2 study.

    Parameters
    ----------
    data
        One decoded study, ``{"protocolSection": {...}, "derivedSection": {...}}``.
        Missing modules and fields read as empty; enumerations and dates are kept
        as given (API v2 spelling, ISO dates).

    Returns
    -------
    TrialRecord
        The study's record.

    Raises
    ------
    RecordError
        If ``data`` is not a study: not an object, no ``protocolSection``, a missing
        or invalid ``nctId``, or a field of the wrong JSON type (the message names
        the field's path).
    """
    if not isinstance(data, dict) or "protocolSection" not in data:
        raise not_a_study(data)
    protocol = _obj(data, "protocolSection", "study")
    derived = _obj(data, "derivedSection", "study")
    p = "protocolSection"
    ident = _obj(protocol, "identificationModule", p)
    status = _obj(protocol, "statusModule", p)
    sponsors = _obj(protocol, "sponsorCollaboratorsModule", p)
    description = _obj(protocol, "descriptionModule", p)
    conditions = _obj(protocol, "conditionsModule", p)
    design = _obj(protocol, "designModule", p)
    arms = _obj(protocol, "armsInterventionsModule", p)
    eligibility = _obj(protocol, "eligibilityModule", p)
    contacts = _obj(protocol, "contactsLocationsModule", p)
    return TrialRecord(
        nct_id=_nct_id(ident),
        brief_title=_text(ident, "briefTitle", f"{p}.identificationModule"),
        official_title=_text(ident, "officialTitle", f"{p}.identificationModule"),
        acronym=_text(ident, "acronym", f"{p}.identificationModule"),
        brief_summary=_text(description, "briefSummary", f"{p}.descriptionModule"),
        detailed_description=_text(description, "detailedDescription", f"{p}.descriptionModule"),
        conditions=_texts(conditions, "conditions", f"{p}.conditionsModule"),
        keywords=_texts(conditions, "keywords", f"{p}.conditionsModule"),
        interventions=_interventions(arms, f"{p}.armsInterventionsModule"),
        arm_groups=_arm_groups(arms, f"{p}.armsInterventionsModule"),
        condition_mesh_terms=_mesh_terms(derived, "conditionBrowseModule"),
        intervention_mesh_terms=_mesh_terms(derived, "interventionBrowseModule"),
        phases=_texts(design, "phases", f"{p}.designModule"),
        overall_status=_code(status, "overallStatus", f"{p}.statusModule"),
        study_type=_code(design, "studyType", f"{p}.designModule"),
        start_date=_date(status, "startDateStruct"),
        lead_sponsor=_code(
            _obj(sponsors, "leadSponsor", f"{p}.sponsorCollaboratorsModule"),
            "name",
            f"{p}.sponsorCollaboratorsModule.leadSponsor",
        ),
        eligibility_criteria=_text(eligibility, "eligibilityCriteria", f"{p}.eligibilityModule"),
        last_update_date=_date(status, "lastUpdatePostDateStruct"),
        collaborators=_names(sponsors, "collaborators", "name", f"{p}.sponsorCollaboratorsModule"),
        officials=_names(contacts, "overallOfficials", "name", f"{p}.contactsLocationsModule"),
        sites=_names(contacts, "locations", "facility", f"{p}.contactsLocationsModule"),
    )


def _date(status: dict[str, Any], struct: str) -> str | None:
    """``statusModule.<struct>.date``: ISO at the registry's precision, kept as given."""
    where = "protocolSection.statusModule"
    return _code(_obj(status, struct, where), "date", f"{where}.{struct}")
