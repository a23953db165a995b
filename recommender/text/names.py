"""Which part of a sponsor's name is an organisation a trial can share with another.

A lead sponsor is often a unit and the organisation it belongs to, after a comma:
"Third Affiliated Hospital, Sun Yat-Sen University", "Masonic Cancer Center,
University of Minnesota". Two trials of the same university are related through it,
so the sponsor group reads that organisation as a name of its own. The other parts
are not names to match on: the unit alone ("Third Affiliated Hospital" belongs to
many universities), a place ("University Hospital, Lille", "..., France"), a legal
form ("..., Inc."), or a piece of a name that has commas in it ("National Heart,
Lung, and Blood Institute"). Measured on the registry corpus: of the 478 distinct
comma-separated parts, most were places, legal forms and generic units.
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
