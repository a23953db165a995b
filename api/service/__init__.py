"""What the routes do, without HTTP: the serving index (:class:`IndexHolder`), its
prepared display fields and explainer, and the answers to a query as plain payloads."""

from api.service.display import DisplayRecord, decode_display
from api.service.holder import IndexHolder, LoadedIndex
from api.service.prepared import PreparedIndex, build_tag, prepare
from api.service.similar import (
    answered_from_stored_lists,
    answered_on_the_loop,
    facet_filters,
    query_record,
    query_title,
    similar_to_query,
    similar_to_query_payload,
    similar_to_trial,
    similar_to_trial_payload,
)

__all__ = [
    "DisplayRecord",
    "IndexHolder",
    "LoadedIndex",
    "PreparedIndex",
    "answered_from_stored_lists",
    "answered_on_the_loop",
    "build_tag",
    "decode_display",
    "facet_filters",
    "prepare",
    "query_record",
    "query_title",
    "similar_to_query",
    "similar_to_query_payload",
    "similar_to_trial",
    "similar_to_trial_payload",
]
