"""Names two trials can share: a sponsor's organisation, an official, a site.

A lead sponsor is often a unit and the organisation it belongs to, after a comma:
"Third Affiliated Hospital, Sun Yat-Sen University", "Masonic Cancer Center,
University of Minnesota". Two trials of the same university are related through it,
so the sponsor group reads that organisation as a name of its own. The other parts
are not names to match on: the unit alone ("Third Affiliated Hospital" belongs to
many universities), a place ("University Hospital, Lille", "..., France"), a legal
form ("..., Inc."), or a piece of a name that has commas in it ("National Heart,
Lung, and Blood Institute"). Measured on the registry corpus: of the 478 distinct
comma-separated parts, most were places, legal forms and generic units.

An overall official and a site are matched by name too (:func:`person_name`,
:func:`site_name`): the registry writes degrees and addresses after a comma, and
sponsors write roles ("Medical Monitor") and placeholders ("Novartis Investigative
Site") where a name should be; those link the trials of a sponsor, which the sponsor
group does already, and would read as reasons no one could use.
"""

from __future__ import annotations

import re

# Words that say a part is an organisation (a place or a legal form has none).
ORGANISATION_WORDS = frozenset(
    """
    university universidad universidade universita università universität universitat
    universitaire universitario college school institute institut instituto hospital
    hospitalier hôpital hopital klinikum clinic center centre foundation fondazione
    fundación fundacion council agency ministry society trust consortium network
    organization organisation association academy
    """.split()  # noqa: SIM905 - a list of words reads best as text
)

# Words any organisation may carry: a part made of these alone names no one in
# particular ("Third Affiliated Hospital", "University Hospital", "Cancer Center").
GENERIC_WORDS = ORGANISATION_WORDS | frozenset(
    """
    first second third fourth fifth sixth seventh eighth ninth tenth affiliated
    general central medical medicine national regional provincial municipal city
    state public people peoples children childrens women womens cancer health
    sciences science research department dept faculty division unit teaching
    of the and for at in de la le du des di del der und y e s
    """.split()  # noqa: SIM905
)

_WORD = re.compile(r"[^\W\d_]+")
# A part that starts so continues a list inside one name ("Heart, Lung, and Blood").
_CONTINUING = frozenset({"and", "or", "of", "et", "und", "y"})


def parent_organisation(name: str) -> str | None:
    """The organisation ``name`` says it belongs to, or ``None``.

    The last comma-separated part of ``name``, when it has a word saying it is an
    organisation and a word no organisation shares (its own name).

    Examples
    --------
    >>> parent_organisation("Third Affiliated Hospital, Sun Yat-Sen University")
    'Sun Yat-Sen University'
    >>> parent_organisation("University Hospital, Lille") is None
    True
    >>> parent_organisation("National Heart, Lung, and Blood Institute") is None
    True
    >>> parent_organisation("Novartis") is None
    True
    """
    if "," not in name:
        return None
    last = name.rsplit(",", 1)[1].strip()
    words = _WORD.findall(last.lower())
    if not words or words[0] in _CONTINUING:
        return None  # the end of a name with commas in it, not a name of its own
    if ORGANISATION_WORDS.intersection(words) and set(words) - GENERIC_WORDS:
        return last
    return None


# Words of an overall official's "name" that say it is a role or a help line, not a
# person ("Medical Monitor", "GSK Clinical Trials", "Pfizer CT.gov Call Center").
ROLE_WORDS = frozenset(
    """
    call center centre clinical trials trial monitor director study studies medical
    registry information sponsor contact department team desk
    """.split()  # noqa: SIM905
)

# Words that, with "site", make a facility a sponsor's placeholder for its sites
# ("Novartis Investigative Site", "Research Site"), not a place two trials share.
_PLACEHOLDER_WORDS = frozenset(
    """
    investigational investigative investigator investigators research study clinical
    """.split()  # noqa: SIM905
)
# A name of more words than this is a sentence ("For additional information ...").
_MAX_NAME_WORDS = 10


def _name_before_comma(name: str) -> tuple[str, list[str]]:
    """The part of ``name`` before its first comma (the registry writes degrees and
    addresses after one), and its lower-cased words."""
    first = name.split(",", 1)[0].strip()
    return first, _WORD.findall(first.lower())


def person_name(name: str) -> str | None:
    """An overall official's name without degrees, or ``None`` if it names no person.

    The registry gives "Walter Ling, M.D." and "Walter Ling, MD" for one person: the
    name is what comes before the first comma. A role or help line ("Medical
    Monitor", "Call 1-877-CTLILLY ..."), a single word and a text with digits are
    not names two trials could share.

    Examples
    --------
    >>> person_name("Stanislaw R. Burzynski, MD, PhD")
    'Stanislaw R. Burzynski'
    >>> person_name("Bayer Study Director") is None
    True
    """
    first, words = _name_before_comma(name)
    if len(words) < 2 or len(words) > _MAX_NAME_WORDS or any(c.isdigit() for c in first):
        return None
    if ROLE_WORDS.intersection(words):
        return None
    return first


def site_name(name: str) -> str | None:
    """A facility's name without its address, or ``None`` for a placeholder.

    "National Institutes of Health Clinical Center, 9000 Rockville Pike" is the
    "National Institutes of Health Clinical Center" (the name before the first
    comma); "Novartis Investigative Site", "Research Site" or "Local Institution" are
    how sponsors hide their sites, and a long text is a note, not a name.

    Examples
    --------
    >>> site_name("Jonsson Comprehensive Cancer Center, UCLA")
    'Jonsson Comprehensive Cancer Center'
    >>> site_name("GSK Investigational Site") is None
    True
    """
    first, words = _name_before_comma(name)
    if not words or len(words) > _MAX_NAME_WORDS or words == ["local", "institution"]:
        return None
    if {"site", "sites"}.intersection(words) and _PLACEHOLDER_WORDS.intersection(words):
        return None
    return first
