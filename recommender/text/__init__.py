"""Trial records into vectors: the field groups and their weights
(:mod:`~recommender.text.fields`), what a term is (:mod:`~recommender.text.tokenizer`,
its compiled twin beside it), abbreviations learned from the corpus, BM25 weighting
and the vectoriser that puts them together (:class:`FieldGroupVectorizer`)."""

from recommender.text.abbreviations import AbbreviationTable, learn_abbreviations
from recommender.text.fields import (
    DEFAULT_FIELD_GROUPS,
    DEFAULT_NORM_POWER,
    PROSE_FIELDS,
    TEXT_FIELDS,
    FieldGroup,
    field_items,
)
from recommender.text.group_model import GroupModel
from recommender.text.names import parent_organisation, person_name, site_name
from recommender.text.readable import PROTOCOL_WORDS, readable, readable_mask
from recommender.text.stop_words import ENGLISH_STOP_WORDS
from recommender.text.tokenizer import ItemAnalyzer, words
from recommender.text.vectorizer import FieldGroupVectorizer
from recommender.text.weighting import (
    average_length,
    bm25_weights,
    extend_pivoted,
    mean_norm,
    pivot_normalise,
    row_norms,
    smooth_idf,
)

__all__ = [
    "DEFAULT_FIELD_GROUPS",
    "DEFAULT_NORM_POWER",
    "ENGLISH_STOP_WORDS",
    "PROSE_FIELDS",
    "PROTOCOL_WORDS",
    "TEXT_FIELDS",
    "AbbreviationTable",
    "FieldGroup",
    "FieldGroupVectorizer",
    "GroupModel",
    "ItemAnalyzer",
    "average_length",
    "bm25_weights",
    "extend_pivoted",
    "field_items",
    "learn_abbreviations",
    "mean_norm",
    "parent_organisation",
    "person_name",
    "pivot_normalise",
    "readable",
    "readable_mask",
    "row_norms",
    "site_name",
    "smooth_idf",
    "words",
]
