"""Which terms a person can read as a reason: the terms an explanation may show.

A score counts every shared term, and some carry signal a reader would not accept as
a reason on their own: a lone number ("2", shared by "Phase 2" and "type 2"), a single
letter, or a word about how a trial is run rather than what it studies ("randomized",
"patients", "study"); they still separate an observational study from a randomised
trial, so the model keeps them. An explanation lists only :func:`readable` terms;
their group's share of the score still counts all of them, so the shares add up to
the score.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: Words about a trial's conduct, not its subject: never a reason shown alone.
PROTOCOL_WORDS: frozenset[str] = frozenset(
    """
    study studies studied trial trials patient patients subject subjects participant
    participants volunteer volunteers people individuals person persons randomized
    randomised randomly randomization randomisation random group groups arm arms cohort
    cohorts phase phases clinical investigator investigators investigate investigated
    investigating investigation investigational purpose aim aims objective objectives goal
    primary secondary endpoint endpoints outcome outcomes measure measures evaluate
    evaluated evaluating evaluation assess assessed assessing assessment determine
    determined compare compared comparing comparison versus vs controlled control double
    blind blinded masked open label multicenter multicentre multi center centre centers
    centres site sites pilot prospective retrospective efficacy effectiveness effective
    safety safe tolerability treatment treatments treated use used using receive received
    receiving given day days week weeks month months year years baseline follow data
    results
    """.split()  # noqa: SIM905 - a list of words reads best as text
)


def readable(term: str) -> bool:
    """Whether ``term`` may be shown as a reason: not a lone number or letter, not a
    protocol word, not an n-gram made of nothing else ("phase 2", "randomized trial")."""
    return any(_says_something(word) for word in term.split(" "))


def readable_mask(terms: Sequence[str]) -> np.ndarray:
    """:func:`readable` of each term, shape (len(terms),), dtype bool."""
    return np.fromiter((readable(term) for term in terms), dtype=bool, count=len(terms))


def _says_something(word: str) -> bool:
    return len(word) > 1 and not word.isdigit() and word not in PROTOCOL_WORDS
