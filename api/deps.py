"""What routes depend on: the serving index (read once per request) and the
parameters several routes share, documented once for the OpenAPI schema."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi import Path as PathParam

from api.schemas import MAX_K, Phase, Status, StudyType
from recommender.core import NCT_ID_INPUT_PATTERN
from recommender.index import TrialIndex


async def serving_index(request: Request) -> TrialIndex:
    """The index this request uses from start to end (a reload meanwhile swaps the
    holder's reference, not this one). A coroutine: FastAPI runs a plain-function
    dependency in its thread pool, a thread hop per request for one attribute read."""
    return request.app.state.holder.index


IndexDep = Annotated[TrialIndex, Depends(serving_index)]

NctIdParam = Annotated[
    str,
    PathParam(
        description="ClinicalTrials.gov id: 'NCT' and 8 digits (case and spaces forgiven).",
        examples=["NCT00000001"],
        # Documented, not enforced by FastAPI: the engine's check says more clearly
        # what is wrong with an id than "String should match pattern".
        json_schema_extra={"pattern": NCT_ID_INPUT_PATTERN},
    ),
]

KParam = Annotated[int, Query(ge=1, le=MAX_K, description="Number of results.")]

StatusParam = Annotated[list[Status] | None, Query(description="Repeatable.")]

PhaseParam = Annotated[list[Phase] | None, Query(description="Repeatable; any phase matches.")]

StudyTypeParam = Annotated[list[StudyType] | None, Query(description="Repeatable.")]

# The page's selects send "" for "any", so its filters are checked by the engine instead.
PageFilter = Annotated[list[str] | None, Query(description="Repeatable; empty means any.")]
