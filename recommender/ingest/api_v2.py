"""The part of an API v2 study the recommender reads, as typed msgspec structs.

:func:`decode_study` turns the bytes of one study straight into a
:class:`~recommender.core.records.TrialRecord`: msgspec decodes only the fields declared
here (skipping the rest of the document, results and all, without building it) and
checks their JSON types while it goes. It is the fast path of
:func:`recommender.ingest.ctgov_json.parse_document`; anything it does not accept
(a page or list of studies, a wrong type, invalid JSON, another encoding) returns
``None``, and the document is read again by the dict-walking parser, which names the
offending field in its message. Both give the same record for every study this one
accepts (tests/test_ingest_json.py compares them).
"""

from __future__ import annotations

import msgspec

from recommender.core import (
    ArmGroup,
    Intervention,
    InvalidNctIdError,
    TrialRecord,
    collapse_whitespace,
    distinct_texts,
)

# Every field is optional and may be null, as in the dict-walking parser: most
# studies lack most modules.


class _Struct(msgspec.Struct, frozen=True):
    pass


class _Identification(_Struct):
    nctId: str | None = None
    briefTitle: str | None = None
    officialTitle: str | None = None
    acronym: str | None = None


class _DateStruct(_Struct):
    date: str | None = None


class _Status(_Struct):
    overallStatus: str | None = None
    startDateStruct: _DateStruct | None = None
    lastUpdatePostDateStruct: _DateStruct | None = None


class _Sponsor(_Struct):
    name: str | None = None


class _Sponsors(_Struct):
    leadSponsor: _Sponsor | None = None
    collaborators: list[_Sponsor] | None = None


class _Official(_Struct):
    name: str | None = None


class _Location(_Struct):
    facility: str | None = None


class _Contacts(_Struct):
    overallOfficials: list[_Official] | None = None
    locations: list[_Location] | None = None


class _Description(_Struct):
    briefSummary: str | None = None
    detailedDescription: str | None = None


class _Conditions(_Struct):
    conditions: list[str] | None = None
    keywords: list[str] | None = None


class _Design(_Struct):
    phases: list[str] | None = None
    studyType: str | None = None


class _Intervention(_Struct):
    name: str | None = None
    type: str | None = None
    otherNames: list[str] | None = None
    description: str | None = None


class _ArmGroup(_Struct):
    label: str | None = None
    type: str | None = None
    description: str | None = None
    interventionNames: list[str] | None = None


class _Arms(_Struct):
    interventions: list[_Intervention] | None = None
    armGroups: list[_ArmGroup] | None = None


class _Eligibility(_Struct):
    eligibilityCriteria: str | None = None


class _Protocol(_Struct):
    identificationModule: _Identification | None = None
    statusModule: _Status | None = None
    sponsorCollaboratorsModule: _Sponsors | None = None
    descriptionModule: _Description | None = None
    conditionsModule: _Conditions | None = None
    designModule: _Design | None = None
    armsInterventionsModule: _Arms | None = None
    eligibilityModule: _Eligibility | None = None
    contactsLocationsModule: _Contacts | None = None


class _Mesh(_Struct):
    term: str | None = None


class _Browse(_Struct):
    meshes: list[_Mesh] | None = None


class _Derived(_Struct):
    conditionBrowseModule: _Browse | None = None
    interventionBrowseModule: _Browse | None = None


class _Study(_Struct):
    protocolSection: _Protocol | None = None
    derivedSection: _Derived | None = None


_DECODER = msgspec.json.Decoder(_Study)

# Absent modules read as these, so the record is built by one code path.
_NO_PROTOCOL = _Protocol()
_NO_IDENTIFICATION = _Identification()
_NO_STATUS = _Status()
_NO_DATE = _DateStruct()
_NO_SPONSORS = _Sponsors()
_NO_SPONSOR = _Sponsor()
_NO_DESCRIPTION = _Description()
_NO_CONDITIONS = _Conditions()
_NO_DESIGN = _Design()
_NO_ARMS = _Arms()
_NO_ELIGIBILITY = _Eligibility()
_NO_CONTACTS = _Contacts()
_NO_DERIVED = _Derived()
_NO_BROWSE = _Browse()
_EMPTY_INTERVENTION = Intervention(name="")
_EMPTY_ARM = ArmGroup(label="")


def decode_study(raw: bytes) -> TrialRecord | None:
    """The record of one API v2 study given as UTF-8 JSON bytes, or None.

    None means "not read here": the bytes are not one study object with a
    ``protocolSection`` and a valid ``nctId`` whose read fields all have their JSON
    types. The caller then reads them with the dict-walking parser, which either
    gives the same record or says exactly what is wrong.
    """
    try:
        study = _DECODER.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        # RecursionError: nesting too deep for the decoder, even inside a field it
        # skips; the dict-walking parser then names the problem (or reads it).
        return None
    protocol = study.protocolSection
    if protocol is None:  # a page, a list, a label file, a broken study: not ours
        return None
    ident = protocol.identificationModule or _NO_IDENTIFICATION
    if ident.nctId is None:
        return None
    try:
        return _record(protocol, ident, study.derivedSection or _NO_DERIVED)
    except InvalidNctIdError:
        return None


def _record(protocol: _Protocol, ident: _Identification, derived: _Derived) -> TrialRecord:
    status = protocol.statusModule or _NO_STATUS
    description = protocol.descriptionModule or _NO_DESCRIPTION
    conditions = protocol.conditionsModule or _NO_CONDITIONS
    design = protocol.designModule or _NO_DESIGN
    arms = protocol.armsInterventionsModule or _NO_ARMS
    sponsors = protocol.sponsorCollaboratorsModule or _NO_SPONSORS
    sponsor = sponsors.leadSponsor or _NO_SPONSOR
    contacts = protocol.contactsLocationsModule or _NO_CONTACTS
    return TrialRecord(
        nct_id=ident.nctId,
        brief_title=collapse_whitespace(ident.briefTitle),
        official_title=collapse_whitespace(ident.officialTitle),
        acronym=collapse_whitespace(ident.acronym),
        brief_summary=collapse_whitespace(description.briefSummary),
        detailed_description=collapse_whitespace(description.detailedDescription),
        conditions=_texts(conditions.conditions),
        keywords=_texts(conditions.keywords),
        interventions=_interventions(arms.interventions),
        arm_groups=_arm_groups(arms.armGroups),
        condition_mesh_terms=_mesh_terms(derived.conditionBrowseModule),
        intervention_mesh_terms=_mesh_terms(derived.interventionBrowseModule),
        phases=_texts(design.phases),
        overall_status=_code(status.overallStatus),
        study_type=_code(design.studyType),
        start_date=_code((status.startDateStruct or _NO_DATE).date),
        lead_sponsor=_code(sponsor.name),
        eligibility_criteria=collapse_whitespace(
            (protocol.eligibilityModule or _NO_ELIGIBILITY).eligibilityCriteria
        ),
        last_update_date=_code((status.lastUpdatePostDateStruct or _NO_DATE).date),
        collaborators=distinct_texts(item.name for item in sponsors.collaborators or ()),
        officials=distinct_texts(item.name for item in contacts.overallOfficials or ()),
        sites=distinct_texts(item.facility for item in contacts.locations or ()),
    )


def _code(value: str | None) -> str | None:
    return collapse_whitespace(value) or None


def _texts(values: list[str] | None) -> tuple[str, ...]:
    if not values:
        return ()
    return tuple(text for text in map(collapse_whitespace, values) if text)


def _interventions(items: list[_Intervention] | None) -> tuple[Intervention, ...]:
    kept = []
    for item in items or ():
        intervention = Intervention(
            name=collapse_whitespace(item.name),
            type=_code(item.type),
            other_names=_texts(item.otherNames),
            description=collapse_whitespace(item.description),
        )
        if intervention != _EMPTY_INTERVENTION:
            kept.append(intervention)
    return tuple(kept)


def _arm_groups(items: list[_ArmGroup] | None) -> tuple[ArmGroup, ...]:
    kept = []
    for item in items or ():
        arm = ArmGroup(
            label=collapse_whitespace(item.label),
            type=_code(item.type),
            description=collapse_whitespace(item.description),
            intervention_names=_texts(item.interventionNames),
        )
        if arm != _EMPTY_ARM:
            kept.append(arm)
    return tuple(kept)


def _mesh_terms(browse: _Browse | None) -> tuple[str, ...]:
    meshes = (browse or _NO_BROWSE).meshes or ()
    terms = (collapse_whitespace(mesh.term) for mesh in meshes)
    return tuple(term for term in terms if term)
