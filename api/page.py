"""The HTML page at ``/``: one box for an NCT id or a text, and the related trials.

Server-rendered from ``templates/index.html`` with Jinja2 (autoescaped); no script,
no build step, nothing fetched from elsewhere.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from urllib.parse import urlencode

from fastapi.templating import Jinja2Templates
from pydantic import ValidationError

from api.schemas import DEFAULT_K, MAX_K, MAX_TEXT, SimilarQuery, SimilarResponse
from api.service import EmptyQueryError, facet_filters, similar_to_query, similar_to_trial
from recommender.facets import REGISTRY_VALUES, UnknownFacetValueError
from recommender.index import NotInIndexError, TrialIndex
from recommender.records import InvalidNctIdError

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
PAGE_K_CHOICES = (5, 10, 20, 50)
DEFAULT_PAGE_K = DEFAULT_K
# One word starting with "NCT" is meant as an id, even a mistyped one: saying it is
# malformed helps more than a text search for "NCT1234".
_LOOKS_LIKE_ID = re.compile(r"\s*nct\S*\s*", re.IGNORECASE)


@functools.lru_cache(maxsize=1024)  # the same few enumeration values, on every page
def humanize(value: str | None) -> str:
    """``ACTIVE_NOT_RECRUITING`` -> ``Active not recruiting``, ``PHASE2`` -> ``Phase 2``."""
    if not value:
        return ""
    if value == "NA":
        return "N/A"
    text = value.replace("_", " ").lower().capitalize()
    return re.sub(r"(phase)(\d)", r"\1 \2", text, flags=re.IGNORECASE)


def page_k(text: str) -> int:
    """The page's ``k``: the number asked for, kept within 1..100, else the default."""
    try:
        return min(max(int(text), 1), MAX_K)
    except ValueError:
        return DEFAULT_PAGE_K


def form_filters(
    status: list[str] | None, phase: list[str] | None, study_type: list[str] | None
) -> dict[str, list[str]]:
    """The page form's filters, without the empty "any" choices."""
    return facet_filters(
        *([v for v in values or () if v] for values in (status, phase, study_type))
    )


def answer(
    index: TrialIndex, q: str, k: int, filters: dict[str, list[str]]
) -> tuple[SimilarResponse | None, str | None, int]:
    """The page's result for box content ``q``: (response, error message, HTTP status)."""
    q = q.strip()[:MAX_TEXT]
    try:
        index.facets.allowed(filters)  # a bad value is reported, even with no query yet
        if not q:
            return None, None, 200
        if _LOOKS_LIKE_ID.fullmatch(q):
            return similar_to_trial(index, q, k, filters), None, 200
        query = SimilarQuery(text=q, k=k, **filters)
        return similar_to_query(index, query), None, 200
    except NotInIndexError as exc:
        return None, str(exc), 404
    except (InvalidNctIdError, EmptyQueryError, UnknownFacetValueError) as exc:
        return None, str(exc), 422
    except ValidationError as exc:  # a facet value this index has but the registry lacks
        return None, "; ".join(e["msg"] for e in exc.errors()), 422


def context(index: TrialIndex, q: str, k: int, filters: dict[str, list[str]]) -> tuple[dict, int]:
    """Template variables for the page, and the status code to send it with."""
    response, error, status = answer(index, q, k, filters)

    # Keep k and the filters, so following a link keeps the same view (encoded once:
    # urlencode per result was a tenth of the page's time).
    kept = urlencode({"k": k, **filters}, doseq=True)

    def related_link(nct_id: str) -> str:
        return f"/?{urlencode({'q': nct_id})}&{kept}"

    page = {
        "q": q,
        "k": k,
        "k_choices": sorted({*PAGE_K_CHOICES, k}),
        "filters": filters,
        "facet_values": {name: REGISTRY_VALUES[name] for name in facet_filters()},
        "response": response,
        "error": error,
        "index_built_at": index.built_at,
        "index_studies": len(index),
        "example_id": str(index.ids[0]) if len(index) else "NCT00000000",
        "related_link": related_link,
        "humanize": humanize,
    }
    return page, status
