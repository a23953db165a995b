"""The error and 304 answers routes document in the OpenAPI schema."""

from __future__ import annotations

from api.schemas import (
    ErrorOut,
)

ERROR = {"model": ErrorOut}

BAD_INPUT = {422: ERROR | {"description": "Malformed id or bad parameter"}}

NOT_FOUND = {404: ERROR | {"description": "Not in this index"}}

TOO_LARGE = {413: ERROR | {"description": "Body larger than the limit"}}

NOT_MODIFIED = {304: {"description": "Not modified: `If-None-Match` names the current ETag"}}

PAGE_ERRORS = {
    code: {"description": what + ", shown in the page", "content": {"text/html": {}}}
    for code, what in ((404, "Not in this index"), (422, "Malformed id or bad parameter"))
}

EMBED_ERRORS = {
    404: PAGE_ERRORS[404],
    422: {
        "description": "Malformed or unknown id or filter value: shown in the box; a "
        "parameter of the wrong type or range: JSON, as in the API",
        "content": {"text/html": {}, "application/json": {"schema": ErrorOut.model_json_schema()}},
    },
}
