"""The HTML for people: the page at ``/``, a trial's page, and the embeddable box.

``/`` has one box for an NCT id or a text, and the related trials; a trial's page
(``/trials/{nct_id}/page``) shows its record; ``/embed/{nct_id}`` is a small
"Related clinical trials" box for another site's iframe. Server-rendered from
``templates/`` with Jinja2 (autoescaped); no script, no build step, nothing fetched
from elsewhere (the pages share ``base.html``; the box is self-contained).
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from urllib.parse import quote, urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
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
DEFAULT_EMBED_K = DEFAULT_K
TRIAL_PAGE_RELATED = 5
REGISTRY_STUDY_URL = "https://clinicaltrials.gov/study/{nct_id}"
# Who may put the box in a frame: any site, unless the service is configured otherwise.
DEFAULT_FRAME_ANCESTORS = "*"
# The box loads nothing (inline style only), submits nothing, and may be framed by
# the ancestors named: a CSP that says so also keeps any injected markup inert.
_EMBED_POLICY = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
_CSP_SOURCE = re.compile(r"[!-~]+")  # printable ASCII without spaces
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


def trial_link(nct_id: str) -> str:
    """Address of a trial's page in this service."""
    return f"/trials/{quote(nct_id)}/page"


def registry_link(nct_id: str) -> str:
    """Address of a trial's page on ClinicalTrials.gov."""
    return REGISTRY_STUDY_URL.format(nct_id=quote(nct_id))


def related_link(nct_id: str, k: int | None = None, filters: dict | None = None) -> str:
    """Address of the page listing the trials most like ``nct_id``."""
    return "/?" + urlencode({"q": nct_id, **({"k": k} if k else {}), **(filters or {})}, doseq=True)


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

    def related_here(nct_id: str) -> str:
        return f"/?{urlencode({'q': nct_id})}&{kept}"

    page = {
        **_site(index),
        "q": q,
        "k": k,
        "k_choices": sorted({*PAGE_K_CHOICES, k}),
        "filters": filters,
        "facet_values": {name: REGISTRY_VALUES[name] for name in facet_filters()},
        "response": response,
        "error": error,
        "example_id": str(index.ids[0]) if len(index) else "NCT00000000",
        "related_link": related_here,
    }
    return page, status


def trial_page(request: Request, index: TrialIndex, nct_id: str) -> HTMLResponse:
    """A trial's record for a person, with its most similar trials; else an error page.

    An id that is malformed is a 422 and one not in the index a 404, as in the JSON
    API, but each shown as a page that says what was wrong.
    """
    try:
        record = index.record(nct_id)
    except InvalidNctIdError as exc:
        return _error_page(request, index, "Not a trial id", str(exc), 422)
    except NotInIndexError as exc:
        return _error_page(request, index, "Trial not found", str(exc), 404)
    related = similar_to_trial(index, record.nct_id, TRIAL_PAGE_RELATED, facet_filters())
    variables = {**_site(index), "record": record, "related": related.results}
    return TEMPLATES.TemplateResponse(request, "trial.html", variables)


def embed(
    request: Request,
    index: TrialIndex,
    nct_id: str,
    k: int,
    filters: dict[str, list[str]],
    frame_ancestors: str,
) -> HTMLResponse:
    """The "Related clinical trials" box for ``nct_id``, framable by ``frame_ancestors``.

    Self-contained (inline style, no script), each trial linking to its registry page
    in a new tab. A bad or unknown id is a 422 or 404 whose body is still a box saying
    so, since the page around the frame shows it either way.
    """
    response, error, status = None, None, 200
    try:
        response = similar_to_trial(index, nct_id, k, filters)
    except NotInIndexError as exc:
        error, status = str(exc), 404
    except (InvalidNctIdError, UnknownFacetValueError) as exc:
        error, status = str(exc), 422
    variables = {**_site(index), "response": response, "error": error}
    headers = {"Content-Security-Policy": f"{_EMBED_POLICY}; frame-ancestors {frame_ancestors}"}
    return TEMPLATES.TemplateResponse(
        request, "embed.html", variables, status_code=status, headers=headers
    )


def frame_ancestors_policy(sources: str | None) -> str:
    """The CSP ``frame-ancestors`` sources for the box: ``"*"``, ``"'self'
    https://registry.example"``, ``"'none'"``...; spaces are normalised.

    Raises
    ------
    ValueError
        For an empty value, or one that would break out of the header (``;``, ``,``,
        control or non-ASCII characters).
    """
    parts = (DEFAULT_FRAME_ANCESTORS if sources is None else sources).split()
    if not parts or not all(_CSP_SOURCE.fullmatch(p) and not set(p) & set(";,") for p in parts):
        raise ValueError(
            f"frame ancestors must be CSP sources separated by spaces, such as '*' or "
            f"\"'self' https://registry.example\", got {sources!r}"
        )
    return " ".join(parts)


def paragraphs(text: str) -> list[str]:
    """A record's text split at blank lines, for ``<p>`` elements."""
    return [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]


def _error_page(
    request: Request, index: TrialIndex, heading: str, message: str, status: int
) -> HTMLResponse:
    variables = {**_site(index), "heading": heading, "message": message}
    return TEMPLATES.TemplateResponse(request, "error.html", variables, status_code=status)


def _site(index: TrialIndex) -> dict:
    """What every template may use: the index's footer facts, links, text helpers."""
    return {
        "index_built_at": index.built_at,
        "index_studies": len(index),
        "humanize": humanize,
        "paragraphs": paragraphs,
        "trial_link": trial_link,
        "registry_link": registry_link,
        "related_link": related_link,
    }
