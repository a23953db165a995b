"""The HTML for people: the page at ``/``, a trial's page, and the embeddable box.

``/`` has one box for an NCT id or a text, and the related trials; a trial's page
(``/trials/{nct_id}/page``) shows its record; ``/embed/{nct_id}`` is a small
"Related clinical trials" box for another site's iframe. Server-rendered from
``templates/`` with Jinja2 (autoescaped); no script, no build step, nothing fetched
from elsewhere (the pages share ``base.html`` and the stylesheet this service serves at
``/static/site.css``; the box is self-contained). The results of ``/`` are made in
Python (:func:`result_items`), escaped there, from the JSON route's payload.
"""

from __future__ import annotations

import functools
import hashlib
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus, urlencode

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape
from pydantic import ValidationError

from api.schemas import DEFAULT_RESULTS, MAX_K, MAX_TEXT, SimilarQuery
from api.service import (
    facet_filters,
    similar_to_query_payload,
    similar_to_trial,
    similar_to_trial_payload,
)
from recommender.core import (
    REGISTRY_VALUES,
    EmptyQueryError,
    InvalidNctIdError,
    UnknownFacetValueError,
)
from recommender.index import NotInIndexError, TrialIndex

# Templates are files of the package, not edited while it serves: no check of their
# modification time on every render (auto_reload), as Jinja does by default.
ENVIRONMENT = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    auto_reload=False,
)
TEMPLATES = Jinja2Templates(env=ENVIRONMENT)
PAGE_K_CHOICES = (5, 10, 20, 50)
TRIAL_PAGE_RELATED = 5
REGISTRY_STUDY_URL = "https://clinicaltrials.gov/study/{nct_id}"
# The score is a dot product of weighted terms, unbounded: a relative match, to compare
# results of one query, not a percentage. The bar is drawn against the list's best.
_SCORE_HINT = (
    "how much this trial's record shares with the query's, weighted terms added up: "
    "higher is closer; compare within this list (not a percentage)"
)
_MADE_TITLE_HINT = "no title in the record: made from its conditions and interventions, or summary"
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
        return DEFAULT_RESULTS


def form_filters(
    status: list[str] | None, phase: list[str] | None, study_type: list[str] | None
) -> dict[str, list[str]]:
    """The page form's filters, without the empty "any" choices."""
    return facet_filters(
        *([v for v in values or () if v] for values in (status, phase, study_type))
    )


def answer(
    index: TrialIndex, q: str, k: int, filters: dict[str, list[str]]
) -> tuple[dict[str, Any] | None, str | None, int]:
    """The page's result for box content ``q``: (payload, error message, HTTP status).

    The payload is the JSON route's dict (:func:`similar_to_trial_payload`), not a
    validated model: the page reads it as it is.
    """
    q = q.strip()[:MAX_TEXT]
    try:
        index.facets.allowed(filters)  # a bad value is reported, even with no query yet
        if not q:
            return None, None, 200
        if _LOOKS_LIKE_ID.fullmatch(q):
            return similar_to_trial_payload(index, q, k, filters), None, 200
        query = SimilarQuery(text=q, k=k, **filters)
        return similar_to_query_payload(index, query), None, 200
    except NotInIndexError as exc:
        return None, str(exc), 404
    except (InvalidNctIdError, EmptyQueryError, UnknownFacetValueError) as exc:
        return None, str(exc), 422
    except ValidationError as exc:  # a facet value this index has but the registry lacks
        return None, "; ".join(e["msg"] for e in exc.errors()), 422


def context(index: TrialIndex, q: str, k: int, filters: dict[str, list[str]]) -> tuple[dict, int]:
    """Template variables for the page, and the status code to send it with."""
    response, error, status = answer(index, q, k, filters)
    # Keep k and the filters, so following a link keeps the same view.
    kept = urlencode({"k": k, **filters}, doseq=True)
    page = {
        **_site(index),
        "q": q,
        "form_choices": form_choices(k, _filters_key(filters)),
        "filters": filters,
        "response": response,
        "results": result_items(response["results"], kept) if response else "",
        "error": error,
        "example_id": example_queries(index)[0][1],
        "examples": example_queries(index) if response is None and error is None else (),
    }
    return page, status


# The page's three examples: a registered trial (the reference case when this index
# holds it), a draft described in words, and a condition.
REFERENCE_TRIAL = "NCT05940610"
EXAMPLE_DRAFT = (
    "Phase 2 randomized trial of semaglutide for weight loss in adolescents with obesity"
)
EXAMPLE_CONDITION = "acute-on-chronic liver failure"


def example_queries(index: TrialIndex) -> tuple[tuple[str, str], ...]:
    """``(what it is, query)`` of the page's three examples for ``index``."""
    if REFERENCE_TRIAL in index:
        trial = REFERENCE_TRIAL
    else:
        trial = str(index.ids[0]) if len(index) else "NCT00000000"
    return (
        ("a registered trial", trial),
        ("a draft trial", EXAMPLE_DRAFT),
        ("a condition", EXAMPLE_CONDITION),
    )


def home_page(index: TrialIndex, q: str, k: int, filters: dict[str, list[str]]) -> HTMLResponse:
    """The page at ``/`` for box content ``q``, ``k`` results and the form's ``filters``."""
    variables, status = context(index, q, k, filters)
    return HTMLResponse(ENVIRONMENT.get_template("index.html").render(variables), status)


def result_items(results: list[dict[str, Any]], kept: str) -> Markup:
    """The page's ``<li>`` for each of a payload's ``results``; ``kept`` is the query
    string (k and filters) their links keep."""
    kept = escape(kept)
    best = max((r["score"] for r in results), default=0.0)
    return Markup("".join([_result_item(r, kept, best) for r in results]))


def made_title(title: str, made: bool) -> Markup:
    """A title, escaped; a made one (see ``display_title``) in a span styled apart."""
    if made:
        return Markup(f'<span class="made" title="{_MADE_TITLE_HINT}">{escape(title)}</span>')
    return escape(title)


def _result_item(r: dict[str, Any], kept: str, best: float) -> str:
    """One result of the page, made in Python rather than by a Jinja loop: with its
    per-result filters, calls and autoescaping, that loop was most of the page's time.
    Every value is escaped here (``kept`` already is)."""
    nct_id = r["nct_id"]
    if nct_id.isascii() and nct_id.isalnum():  # as ids are: nothing to quote or escape
        shown_id = query_id = trial_href = nct_id
    else:
        shown_id, query_id = escape(nct_id), escape(quote_plus(nct_id))
        trial_href = escape(quote(nct_id))
    title = made_title(r["title"], r["title_made"])
    conditions = f"· {escape(', '.join(r['conditions']))}" if r["conditions"] else ""
    width = round(100 * r["score"] / best, 1) if best > 0 else 0
    return f"""
    <li data-nct-id="{shown_id}">
      <div class="rank">{r["rank"]}</div>
      <div class="title"><a href="/?q={query_id}&amp;{kept}">{title}</a></div>
      <div class="score" title="{_SCORE_HINT}">{r["score"]:.3f}
        <div class="bar"><span style="width: {width}%"></span></div>
      </div>
      <div class="facts">
        <a class="nct" href="/trials/{trial_href}/page" title="The trial's details">{shown_id}</a>
        {_badges(r["status"], r["phases"])}
        {conditions}
      </div>
      <div class="why">why: {_why(r["why"])}</div>
    </li>"""


def _badges(status: str | None, phases: list[str]) -> str:
    phase_badges = "".join(map(_phase_badge, phases))
    return f"{_status_badge(status)} {phase_badges}" if status else phase_badges


@functools.lru_cache(maxsize=256)  # a few dozen statuses and phases in all
def _status_badge(status: str) -> str:
    return f'<span class="badge status-{escape(status)}">{escape(humanize(status))}</span>'


@functools.lru_cache(maxsize=256)
def _phase_badge(phase: str) -> str:
    return f'<span class="badge">{escape(humanize(phase))}</span>'


def _why(groups: list[dict[str, Any]]) -> str:
    """``why``'s field groups, each with its terms, separated by a dot."""
    return "· ".join(
        [_field_span(g["field"]) + "".join(map(_term_span, g["terms"])) for g in groups]
    )


# Terms are the index's vocabulary: each one's markup is made once, since escaping a
# string (markupsafe.escape) costs as much as the rest of building a card.
@functools.lru_cache(maxsize=65536)
def _term_span(term: str) -> str:
    return f'<span class="term">{escape(term)}</span> '


@functools.lru_cache(maxsize=256)
def _field_span(field: str) -> str:
    return f'<span class="field">{escape(field)}</span> '


def _filters_key(filters: dict[str, list[str]]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple((name, tuple(values)) for name, values in filters.items())


# The same few forms on every page (k and the filters chosen, not the query): kept
# rendered. Bounded, since a filter value comes from the address bar.
@functools.lru_cache(maxsize=512)
def form_choices(k: int, filters: tuple[tuple[str, tuple[str, ...]], ...]) -> Markup:
    """The form's "Results" and filter selects, for ``k`` and the ``filters`` chosen."""
    chosen = dict(filters)
    variables = {
        "k": k,
        "k_choices": sorted({*PAGE_K_CHOICES, k}),
        "chosen": chosen,
        "facet_values": {name: REGISTRY_VALUES[name] for name in facet_filters()},
        "humanize": humanize,
    }
    return Markup(ENVIRONMENT.get_template("_form_choices.html").render(variables))


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
    headers = embed_headers(frame_ancestors)
    return TEMPLATES.TemplateResponse(
        request, "embed.html", variables, status_code=status, headers=headers
    )


def embed_headers(frame_ancestors: str) -> dict[str, str]:
    """The box's own headers: its Content-Security-Policy, framable by ``frame_ancestors``."""
    return {"Content-Security-Policy": f"{_EMBED_POLICY}; frame-ancestors {frame_ancestors}"}


def frame_ancestors_policy(sources: str | None, default: str = DEFAULT_FRAME_ANCESTORS) -> str:
    """The CSP ``frame-ancestors`` sources for the box (or, with another ``default``,
    the pages): ``"*"``, ``"'self' https://registry.example"``, ``"'none'"``...; spaces
    are normalised; ``default`` when ``sources`` is None.

    Raises
    ------
    ValueError
        For an empty value, or one that would break out of the header (``;``, ``,``,
        control or non-ASCII characters).
    """
    parts = (default if sources is None else sources).split()
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


@functools.lru_cache(maxsize=1)
def stylesheet() -> tuple[bytes, str]:
    """The pages' stylesheet (``templates/site.css``) and its version, a hash of it.

    Served once at ``/static/site.css`` and cached by browsers, rather than inline in
    every page (a fifth of each page's bytes); the pages link it with ``?v=`` its
    version, so a new stylesheet is a new address.
    """
    text = ENVIRONMENT.get_template("site.css").render().encode()
    return text, hashlib.blake2b(text, digest_size=8).hexdigest()


def _site(index: TrialIndex) -> dict:
    """What every template may use: the index's footer facts, links, text helpers."""
    return {
        "stylesheet_version": stylesheet()[1],
        "index_built_at": index.built_at,
        "index_studies": len(index),
        "humanize": humanize,
        "made_title": made_title,
        "paragraphs": paragraphs,
        "trial_link": trial_link,
        "registry_link": registry_link,
        "related_link": related_link,
    }
