"""The shared vocabulary of every other package: the trial record and its NCT id, the
facets results are filtered by, records stored as JSON lines, and shared defaults."""

from recommender.core.defaults import DEFAULT_INDEX, DEFAULT_RESULTS, STORED_NEIGHBOURS
from recommender.core.facets import FACET_FIELDS, REGISTRY_VALUES, Facets, UnknownFacetValueError
from recommender.core.records import (
    DRAFT_ID,
    NCT_ID_INPUT_PATTERN,
    NCT_ID_PATTERN,
    ArmGroup,
    Intervention,
    InvalidNctIdError,
    TrialRecord,
    collapse_whitespace,
    validate_nct_id,
)
from recommender.core.store import (
    RECORDS_FILE,
    RECORDS_OFFSETS_FILE,
    RecordLine,
    RecordStore,
    decode_record,
    encode_record,
    write_records,
)

__all__ = [
    "DEFAULT_INDEX",
    "DEFAULT_RESULTS",
    "DRAFT_ID",
    "FACET_FIELDS",
    "NCT_ID_INPUT_PATTERN",
    "NCT_ID_PATTERN",
    "RECORDS_FILE",
    "RECORDS_OFFSETS_FILE",
    "REGISTRY_VALUES",
    "STORED_NEIGHBOURS",
    "ArmGroup",
    "Facets",
    "Intervention",
    "InvalidNctIdError",
    "RecordLine",
    "RecordStore",
    "TrialRecord",
    "UnknownFacetValueError",
    "collapse_whitespace",
    "decode_record",
    "encode_record",
    "validate_nct_id",
    "write_records",
]
