"""Request and response models of the REST service (they are also its OpenAPI schema).

Facet filters are typed with the registry's API v2 enumerations, so ``/docs`` lists
the values a filter takes and a typo is a 422 before any work is done.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from recommender.core import (
    DEFAULT_RESULTS,
    MAX_FIELD_CHARS,
    MAX_LIST_ITEMS,
    MAX_RESULTS,
    MAX_TEXT_CHARS,
    REGISTRY_VALUES,
)

# ``Literal[tuple]`` expands to one literal per value: the enumerations stay defined
# once, in the engine.
Status = Literal[REGISTRY_VALUES["status"]]  # type: ignore[valid-type]
Phase = Literal[REGISTRY_VALUES["phase"]]  # type: ignore[valid-type]
StudyType = Literal[REGISTRY_VALUES["study_type"]]  # type: ignore[valid-type]

# The limits of every way of asking (recommender.core.queries), under the API's names.
MAX_K = MAX_RESULTS
MAX_TEXT = MAX_TEXT_CHARS
MAX_ITEM = MAX_FIELD_CHARS
MAX_ITEMS = MAX_LIST_ITEMS
_MADE = (
    "True when the record has no title and `title` was made from its conditions and "
    "interventions, or its summary's first sentence (show it differently)."
)


class ErrorOut(BaseModel):
    """Every error response: a sentence for people, the details for programs."""

    detail: str = Field(description="What was wrong, in one sentence.")
    errors: list[dict[str, Any]] | None = Field(
        default=None, description="For a 422 from request validation: each failed check."
    )


class WhyTerm(BaseModel):
    """One field group's part of a similarity score."""

    field: str = Field(
        description="Field group: conditions, interventions, titles, text, sponsor, eligibility. "
        "For a draft with no condition and no intervention, the conditions and interventions "
        "shares are its titles, summary and description meeting the trial's lists."
    )
    score: float = Field(description="This group's share of the score; shares add up to it.")
    terms: list[str] = Field(description="The shared terms that contributed most, largest first.")


class SimilarResult(BaseModel):
    """One recommended trial."""

    rank: int = Field(ge=1)
    nct_id: str
    title: str = Field(description="The brief title, else the official title, else a made one.")
    title_made: bool = Field(description=_MADE)
    score: float = Field(
        description="Dot product of the BM25 field-group vectors (about 1 for a near copy "
        "of an average trial; see docs/evaluation.md)."
    )
    conditions: list[str]
    interventions: list[str] = Field(description="Intervention names.")
    phases: list[str]
    status: str | None = Field(description="Overall recruitment status.")
    why: list[WhyTerm]


class IndexInfo(BaseModel):
    """Which index answered."""

    built_at: str
    studies: int


class SimilarResponse(BaseModel):
    """Trials most like a query trial or text, best first."""

    nct_id: str | None = Field(description="The query trial; null for a POSTed query.")
    title: str = Field(
        description="The query trial's title; for a POSTed query its `title`, else the "
        "start of its `text`, else one made from its fields."
    )
    title_made: bool = Field(description="True when `title` is not a title given or recorded.")
    results: list[SimilarResult]
    index: IndexInfo


class SimilarQuery(BaseModel):
    """A trial that need not be registered: free text, partial trial fields, or both.

    ``text`` is read into the free-text groups (whole text, titles, eligibility; as
    ``recommender similar --text`` reads it), so its words meet trials' prose and
    condition and intervention names; the other fields go to the record fields of
    the same name, so a condition matches conditions. A draft with no condition and
    no intervention also reads its titles, summary and description into those
    groups (never ``text``), so its words also meet the trials' lists. At least
    one must hold a word the index knows.
    """

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"text": "mesenchymal stem cells for liver failure", "k": 10},
                {
                    "title": "Budesonide for asthma in adults",
                    "conditions": ["Asthma"],
                    "interventions": ["Budesonide"],
                    "status": ["RECRUITING"],
                },
            ]
        },
    )

    text: str | None = Field(default=None, max_length=MAX_TEXT, description="Free text.")
    title: str | None = Field(default=None, max_length=MAX_ITEM)
    official_title: str | None = Field(default=None, max_length=MAX_ITEM)
    acronym: str | None = Field(default=None, max_length=MAX_ITEM)
    summary: str | None = Field(default=None, max_length=MAX_TEXT, description="Brief summary.")
    description: str | None = Field(
        default=None, max_length=MAX_TEXT, description="Detailed description."
    )
    conditions: list[str] = Field(default=[], max_length=MAX_ITEMS)
    keywords: list[str] = Field(default=[], max_length=MAX_ITEMS)
    interventions: list[str] = Field(
        default=[], max_length=MAX_ITEMS, description="Intervention names."
    )
    k: int = Field(default=DEFAULT_RESULTS, ge=1, le=MAX_K, description="Number of results.")
    status: list[Status] = Field(default=[], description="Keep only these statuses.")
    phase: list[Phase] = Field(default=[], description="Keep trials in any of these phases.")
    study_type: list[StudyType] = Field(default=[], description="Keep only these study types.")


class Health(BaseModel):
    """Liveness: the process answers."""

    status: Literal["ok"] = "ok"


class Ready(BaseModel):
    """Readiness: which index version is loaded and serving."""

    ready: bool
    built_at: str = Field(description="When the serving index was built.")
    studies: int = Field(description="Studies in the serving index.")
    path: str = Field(description="The version folder loaded (where the served path led).")
    served_path: str = Field(description="The path served: a link each build repoints.")
    up_to_date: bool = Field(
        description="Whether the served path still leads to the version loaded; false for "
        "up to the watch interval after a build, or while a refused build is there."
    )
    watch_seconds: float = Field(description="How often the served path is checked; 0: never.")
    bytes_on_disk: int = Field(description="Total size of the index folder's files.")
    loaded_at: str = Field(description="When this process loaded the serving index.")
    last_reload_error: str | None = Field(
        description="Why the last reload attempt was refused, if it was; the old index serves."
    )


class ReloadOut(BaseModel):
    """Result of a successful reload, in the one worker process that took the request."""

    reloaded: bool
    built_at: str
    studies: int
    previous_built_at: str
    worker_pid: int = Field(description="The worker process that reloaded.")
    reached: Literal["this worker only"] = Field(
        default="this worker only",
        description="A reload reaches the one worker process that took the request. With "
        "`--workers N` the others swap the new index in when their watch sees it "
        "(`RECOMMENDER_WATCH_SECONDS`), or when a reload reaches them.",
    )


class InterventionOut(BaseModel):
    name: str
    type: str | None = None
    other_names: list[str] = []
    description: str = ""


class ArmGroupOut(BaseModel):
    label: str
    type: str | None = None
    description: str = ""
    intervention_names: list[str] = []


class TrialOut(BaseModel):
    """A stored trial record, as the index holds it (``TrialRecord.to_dict()``)."""

    nct_id: str
    brief_title: str = ""
    official_title: str = ""
    acronym: str = ""
    brief_summary: str = ""
    detailed_description: str = ""
    conditions: list[str] = []
    keywords: list[str] = []
    interventions: list[InterventionOut] = []
    arm_groups: list[ArmGroupOut] = []
    condition_mesh_terms: list[str] = []
    intervention_mesh_terms: list[str] = []
    phases: list[str] = []
    overall_status: str | None = None
    study_type: str | None = None
    start_date: str | None = None
    lead_sponsor: str | None = None
    eligibility_criteria: str = ""
    last_update_date: str | None = None
    collaborators: list[str] = []
    officials: list[str] = []
    sites: list[str] = []
