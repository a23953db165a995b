"""The field groups a trial is read as, and their weights: what a vector is made of.

Each :class:`FieldGroup` names the record fields it reads and how its terms are
made and weighted; :data:`DEFAULT_FIELD_GROUPS` is the model every index is built
with unless told otherwise (its parameters are stored in the index, so a loaded
index always uses the groups it was built with). To change a weight, a group's
n-grams or what a free-text query is read into, change it here; the vectoriser
(:mod:`recommender.text.vectorizer`) does the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from recommender.core import TrialRecord
from recommender.text.names import parent_organisation, person_name, site_name

# Fields whose items are names read through a cleaner (no degrees, addresses, roles
# or placeholders: recommender.text.names); an item it rejects is not read.
NAME_READERS = {"officials": person_name, "sites": site_name}


@dataclass(frozen=True)
class FieldGroup:
    """How one group of record fields becomes a block of the vector.

    Parameters
    ----------
    name : str
        Name used in explanations and the index metadata (``"conditions"``).
    fields : tuple of str
        ``TrialRecord`` attributes read, in order. Intervention and arm lists
        contribute their names (interventions also their other names).
    weight : float
        Share of this group in the combined vector; applied to the group's unit rows.
    whole_items : bool
        Also emit each list item as one term (``"acute on chronic liver failure"``),
        so an exact condition or drug name counts more than its words.
    item_words : bool
        Emit the words and n-grams of each item; off (with ``whole_items``), an item
        is one term only: a name that must match whole or not at all (a sponsor, so
        that "university" or "sen" never links two trials).
    name_parts : bool
        Also read the organisation an item names after its last comma as an item of
        its own ("Third Affiliated Hospital, Sun Yat-Sen University" is also "Sun
        Yat-Sen University"; :func:`recommender.text.names.parent_organisation`),
        still a whole name. Never the unit, a place or a legal form.
    ngram_range : tuple of int
        Word n-gram lengths, never crossing from one item to the next.
    min_df, max_df : int or float
        As scikit-learn's ``CountVectorizer``: drop terms too rare to link two trials
        or too common to tell them apart.
    k1, b : float
        BM25 term saturation and length normalisation (``b`` in [0, 1]).
    norm_power : float
        Exponent of the pivoted norm each row of the group is divided by: 1 is
        full (cosine) length normalisation, 0 none.
    reads_free_text : bool
        A free-text query (a draft's description) is read into this group. Off for
        lists, whose n-grams and phrases a patient note or draft should not match
        as if it were a condition list.
    expand_abbreviations : bool
        Add the learned long form of every short form an item uses ("ACLF").
    prune_frequent : bool
        Let the neighbour search skip this group's most frequent terms when it looks
        for candidates (they still count in every score). Right for long free text,
        whose common words make most of the search's cost and carry little.
    read_when_missing : float
        When a *query* record (a draft, a trial asked about as a record) has no term
        in any group with this set, such a group reads the query's own titles,
        summary and description (:data:`PROSE_FIELDS`) instead, weighted by this
        times ``weight``, keeping only terms a list would mean (no lone number or
        letter, no protocol word: :func:`recommender.text.readable`); 0 never. A
        draft that names semaglutide in its summary then meets the intervention
        lists that name it, not only their names in the trials' text.
        Indexed rows never do it (:meth:`FieldGroupVectorizer.transform_queries`
        alone does): filled, the corpus's thin rows drowned every thin query in
        other thin trials (``docs/evaluation.md``).
    """

    name: str
    fields: tuple[str, ...]
    weight: float = 1.0
    whole_items: bool = False
    item_words: bool = True
    name_parts: bool = False
    ngram_range: tuple[int, int] = (1, 1)
    min_df: int | float = 2
    max_df: int | float = 0.5
    k1: float = 4.0
    b: float = 0.5
    norm_power: float = 0.5
    reads_free_text: bool = True
    expand_abbreviations: bool = False
    prune_frequent: bool = False
    read_when_missing: float = 0.0

    def __post_init__(self) -> None:
        unknown = set(self.fields) - set(TrialRecord.__dataclass_fields__)
        if unknown:
            raise ValueError(f"field group {self.name!r}: unknown record fields {sorted(unknown)}")
        if not self.weight > 0:
            raise ValueError(f"field group {self.name!r}: weight must be > 0, got {self.weight}")
        low, high = self.ngram_range
        if not 1 <= low <= high:
            raise ValueError(f"field group {self.name!r}: bad ngram_range {self.ngram_range}")
        if not (self.item_words or self.whole_items):
            raise ValueError(f"field group {self.name!r}: item_words=False needs whole_items")
        if not self.read_when_missing >= 0:
            raise ValueError(
                f"field group {self.name!r}: read_when_missing must be >= 0, "
                f"got {self.read_when_missing}"
            )
        if not (self.k1 >= 0 and 0 <= self.b <= 1 and 0 <= self.norm_power <= 1):
            raise ValueError(
                f"field group {self.name!r}: need k1 >= 0 and b, norm_power in [0, 1], "
                f"got k1={self.k1}, b={self.b}, norm_power={self.norm_power}"
            )

    def items(self, record: TrialRecord) -> list[str]:
        """The strings of ``record`` this group reads, one per list item or text (an
        official or a site by its name alone, :data:`NAME_READERS`; with
        ``name_parts``, also the organisation each item belongs to, if it names one)."""
        items = field_items(record, self.fields, readers=NAME_READERS)
        if not self.name_parts:
            return items
        parents = (parent_organisation(item) for item in items)
        return items + [parent for parent in parents if parent]

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "fields": list(self.fields),
            "weight": self.weight,
            "whole_items": self.whole_items,
            "item_words": self.item_words,
            "name_parts": self.name_parts,
            "ngram_range": list(self.ngram_range),
            "min_df": self.min_df,
            "max_df": self.max_df,
            "k1": self.k1,
            "b": self.b,
            "norm_power": self.norm_power,
            "reads_free_text": self.reads_free_text,
            "expand_abbreviations": self.expand_abbreviations,
            "prune_frequent": self.prune_frequent,
            "read_when_missing": self.read_when_missing,
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> FieldGroup:
        """Inverse of :meth:`to_dict`; a key an older index lacks takes its default."""
        values = dict(data)
        values["fields"] = tuple(values["fields"])
        values["ngram_range"] = tuple(values["ngram_range"])
        return cls(**values)


def field_items(
    record: TrialRecord,
    fields: Sequence[str],
    *,
    other_names: bool = True,
    readers: Mapping[str, Callable[[str], str | None]] | None = None,
) -> list[str]:
    """The non-empty strings of ``record``'s ``fields``, one per list item or text.

    Interventions give their names (and, with ``other_names``, their other names),
    arm groups their labels. A list field with a function in ``readers`` gives what
    it returns for each item, the items it returns None for left out (the names a
    group reads: :data:`NAME_READERS`).
    """
    items: list[str] = []
    for name in fields:
        value = getattr(record, name)
        if name == "interventions":
            for intervention in value:
                items.append(intervention.name)
                if other_names:
                    items.extend(intervention.other_names)
        elif name == "arm_groups":
            items.extend(arm.label for arm in value)
        elif isinstance(value, tuple):
            reader = readers.get(name) if readers else None
            items.extend(value if reader is None else map(reader, value))
        elif value:
            items.append(value)
    return [item for item in items if item]


#: What a query record's groups with ``read_when_missing`` read when it has nothing in
#: them: its titles, summary and description (all that most registry records carry).
PROSE_FIELDS: tuple[str, ...] = (
    "brief_title",
    "official_title",
    "brief_summary",
    "detailed_description",
)

# Tuned on the development labels of docs/evaluation.md (publication sisters, TREC
# patient descriptions), with the reference case held exact: one whole-text group
# carries most of the weight; lists, titles, sponsor and eligibility add to it.
TEXT_FIELDS: tuple[str, ...] = (
    "brief_title",
    "official_title",
    "brief_summary",
    "detailed_description",
    "conditions",
    "keywords",
    "interventions",
)

# A query with no condition and no intervention (a thin record, a draft) reads its
# prose into those two groups at this times their weight, so its words also meet
# the trials' lists. Chosen on the shared label sets (docs/evaluation.md).
READ_WHEN_MISSING = 1.5

DEFAULT_FIELD_GROUPS: tuple[FieldGroup, ...] = (
    FieldGroup(
        "conditions",
        ("conditions", "keywords", "condition_mesh_terms"),
        weight=0.4,
        whole_items=True,
        ngram_range=(1, 3),
        reads_free_text=False,
        expand_abbreviations=True,
        read_when_missing=READ_WHEN_MISSING,
    ),
    FieldGroup(
        "interventions",
        ("interventions", "intervention_mesh_terms"),
        weight=0.4,
        whole_items=True,
        reads_free_text=False,
        expand_abbreviations=True,
        read_when_missing=READ_WHEN_MISSING,
    ),
    FieldGroup("titles", ("brief_title", "official_title", "acronym"), 0.5, ngram_range=(1, 2)),
    FieldGroup("text", TEXT_FIELDS, weight=1.0, prune_frequent=True),
    # A sponsor matches whole or not at all, or by the organisation it belongs to
    # ("Third Affiliated Hospital, Sun Yat-Sen University" and "Sun Yat-sen
    # University"): never through "sun", "university", its unit or its city.
    FieldGroup(
        "sponsor",
        ("lead_sponsor",),
        0.3,
        whole_items=True,
        item_words=False,
        name_parts=True,
        reads_free_text=False,
    ),
    FieldGroup("eligibility", ("eligibility_criteria",), weight=0.5, prune_frequent=True),
    # Who runs the trial and where: collaborators, overall officials and sites, each a
    # whole name (an official without degrees, a site without its address, never a
    # sponsor's placeholder: recommender.text.names). Sister studies of one programme
    # share them; 0.3 took the publication sisters from 0.543 to 0.559 and cost the
    # MeSH regression set 0.008, 0.4 +0.019 and -0.016 (docs/evaluation.md).
    FieldGroup(
        "team",
        ("collaborators", "officials", "sites"),
        0.3,
        whole_items=True,
        item_words=False,
        reads_free_text=False,
    ),
)

# Exponent of the pivoted norm of whole rows (see FieldGroupVectorizer): each group's
# rows are normalised already, so a row's norm grows with the groups it has, and
# dividing by it (0.6 before) made a trial with conditions, interventions and a sponsor
# a poorer match for a query that has none of them (a thin record, a draft). 0.2,
# chosen by 5-fold cross-validation on the shared label sets, keeps most of what the
# extra groups tell apart and halves the handicap (docs/evaluation.md).
DEFAULT_NORM_POWER = 0.2
