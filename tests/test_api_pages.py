"""The HTML for people, in process: offline API docs, a trial's page, the embeddable box."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.html.page import result_items
from api.settings import FRAME_ANCESTORS_ENV
from tests.test_api import shared_tiny_index

REGISTRY_STUDY = re.compile(r"https://clinicaltrials\.gov/study/NCT\d{8}")
URL = re.compile(r"""(?:https?:)?//[^\s"'<>)]+""")
LOADING_TAGS = {"script", "link", "img", "iframe", "object", "embed", "video", "audio", "source"}


@pytest.fixture(scope="module")
def tiny_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_tiny_index(tmp_path_factory)


@pytest.fixture(scope="module")
def client(tiny_index: Path) -> TestClient:
    return TestClient(create_app(tiny_index))


class Tags(HTMLParser):
    """Every start tag of a document, as (name, attributes)."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str | None]]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, dict(attrs)))

    def named(self, name: str) -> list[dict[str, str | None]]:
        return [attrs for tag, attrs in self.found if tag == name]


# -- /docs and /redoc without internet -----------------------------------------------------


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_docs_load_their_assets_from_this_service(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert not URL.findall(response.text), "the docs page must not fetch from elsewhere"
    tags = Tags(response.text)
    assets = [a["src"] for a in tags.named("script") if a.get("src")]
    assets += [a["href"] for a in tags.named("link") if a.get("href")]
    assert assets
    for asset in assets:
        assert asset.startswith("/"), asset
        assert client.get(asset).status_code == 200, asset


def test_docs_use_swagger_ui_5_which_reads_openapi_3_1(client: TestClient) -> None:
    page = Tags(client.get("/docs").text)
    (bundle,) = [a["src"] for a in page.named("script") if a.get("src")]
    script = client.get(bundle).text
    version = re.search(r'PACKAGE_VERSION:"(\d+)\.', script)
    assert version, "no Swagger UI version in the bundle"
    # Swagger UI 4 shows "Unable to render this definition" for an OpenAPI 3.1 schema.
    assert int(version[1]) >= 5
    assert client.get("/openapi.json").json()["openapi"].startswith("3.1")


# -- a trial's page ------------------------------------------------------------------------


def test_trial_page_shows_the_record(client: TestClient) -> None:
    response = client.get("/trials/NCT00000005/page")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert "<title>Budesonide and formoterol in adult asthma · NCT00000005" in html
    assert "<h2>Budesonide and formoterol in adult asthma</h2>" in html
    assert '<span class="badge status-RECRUITING">Recruiting</span>' in html
    assert '<span class="badge">Phase 3</span>' in html
    assert '<dd id="conditions">Asthma</dd>' in html
    assert '<li>Formoterol <span class="type">Drug</span></li>' in html
    assert "<p>Combination inhaler for adults with asthma.</p>" in html
    assert "Index of 9 studies" in html  # the shared footer


def test_trial_page_links_onwards(client: TestClient) -> None:
    links = {
        a.get("id"): a["href"] for a in Tags(client.get("/trials/NCT00000005/page").text).named("a")
    }
    assert links["registry-link"] == "https://clinicaltrials.gov/study/NCT00000005"
    assert links["related-link"] == "/?q=NCT00000005"
    assert links["json-link"] == "/trials/NCT00000005"
    assert client.get(links["json-link"]).json()["nct_id"] == "NCT00000005"


def test_trial_page_lists_its_most_similar_trials(client: TestClient) -> None:
    html = client.get("/trials/NCT00000004/page").text
    related = html[html.index('id="related"') :]
    assert (
        '<a href="/trials/NCT00000005/page">Budesonide and formoterol in adult asthma</a>'
        in related
    )
    assert 'data-nct-id="NCT00000004"' not in related


def test_trial_page_forgives_case_and_spaces(client: TestClient) -> None:
    response = client.get("/trials/%20nct00000007%20/page")
    assert response.status_code == 200
    assert 'data-nct-id="NCT00000007"' in response.text


@pytest.mark.parametrize(
    ("nct_id", "status", "heading", "says"),
    [
        ("NCT09999999", 404, "Trial not found", "NCT09999999 is not in this index"),
        ("NCT123", 422, "Not a trial id", "is not an NCT id"),
        ("<b>x", 422, "Not a trial id", "&#39;&lt;b&gt;x&#39; is not an NCT id"),
    ],
)
def test_trial_page_errors_are_pages(
    client: TestClient, nct_id: str, status: int, heading: str, says: str
) -> None:
    response = client.get(f"/trials/{nct_id}/page")
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")
    assert f"<h2>{heading}</h2>" in response.text
    assert says in response.text and 'role="alert"' in response.text
    assert '<a href="/">Search the index</a>' in response.text


def test_json_record_is_unchanged_beside_the_page(client: TestClient) -> None:
    response = client.get("/trials/NCT00000005", headers={"accept": "text/html"})
    assert response.headers["content-type"] == "application/json"
    assert response.json()["brief_title"] == "Budesonide and formoterol in adult asthma"


def test_result_cards_link_to_the_trial_pages(client: TestClient) -> None:
    html = client.get("/?q=NCT00000004").text
    links = [a["href"] for a in Tags(html).named("a")]
    assert "/trials/NCT00000004/page" in links  # the query trial's details
    assert "/trials/NCT00000005/page" in links and "/trials/NCT00000006/page" in links
    assert "/trials/NCT00000004" not in links  # no raw JSON for a person


# -- the pages' stylesheet -----------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/?q=NCT00000004", "/trials/NCT00000004/page"])
def test_pages_link_the_stylesheet_of_this_service(client: TestClient, path: str) -> None:
    html = client.get(path).text
    assert "<style>" not in html  # not inline in every page any more
    (link,) = Tags(html).named("link")
    assert link["rel"] == "stylesheet" and link["href"].startswith("/static/site.css?v=")
    css = client.get(link["href"])
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert "--accent" in css.text and ".why .term" in css.text and "dl.fields" in css.text
    assert "{%" not in css.text and "url(" not in css.text and "@import" not in css.text


def test_stylesheet_is_kept_a_year_by_its_version_and_revalidated(client: TestClient) -> None:
    href = Tags(client.get("/").text).named("link")[0]["href"]
    css = client.get(href)
    assert css.headers["cache-control"] == "public, max-age=31536000, immutable"
    again = client.get(href, headers={"If-None-Match": css.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    # Another (an old page's) version: the current text, cached only as long as pages.
    other = client.get("/static/site.css?v=0")
    assert other.content == css.content and "immutable" not in other.headers["cache-control"]


# -- the embeddable box --------------------------------------------------------------------


def test_embed_lists_related_trials_linking_to_the_registry(client: TestClient) -> None:
    response = client.get("/embed/NCT00000004")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    tags = Tags(response.text)
    items = [li["data-nct-id"] for li in tags.named("li")]
    assert items == ["NCT00000005", "NCT00000006"]
    links = tags.named("a")
    assert [a["href"] for a in links] == [
        "https://clinicaltrials.gov/study/NCT00000005",
        "https://clinicaltrials.gov/study/NCT00000006",
    ]
    assert all(a["target"] == "_blank" and a["rel"] == "noopener" for a in links)
    assert "Budesonide and formoterol in adult asthma" in response.text
    assert '<span class="badge status-WITHDRAWN">Withdrawn</span>' in response.text


def test_embed_is_self_contained(client: TestClient) -> None:
    html = client.get("/embed/NCT00000001").text
    assert {tag for tag, _ in Tags(html).found} & LOADING_TAGS == set()
    assert not any("src" in attrs or "style" in attrs for _, attrs in Tags(html).found)
    assert "@import" not in html and "url(" not in html
    assert all(REGISTRY_STUDY.fullmatch(url) for url in URL.findall(html)), URL.findall(html)
    assert "<style>" in html and "--accent" in html  # styled, inline


def test_embed_may_be_framed_by_any_site_by_default(client: TestClient) -> None:
    response = client.get("/embed/NCT00000004")
    assert "x-frame-options" not in response.headers
    policy = response.headers["content-security-policy"]
    assert "frame-ancestors *" in policy
    assert "default-src 'none'" in policy  # and it loads nothing


def test_embed_frame_ancestors_are_configurable(tiny_index: Path, monkeypatch) -> None:
    app = create_app(tiny_index, embed_frame_ancestors="'self'  https://registry.example")
    policy = TestClient(app).get("/embed/NCT00000004").headers["content-security-policy"]
    assert policy.endswith("frame-ancestors 'self' https://registry.example")
    monkeypatch.setenv(FRAME_ANCESTORS_ENV, "'none'")
    policy = TestClient(create_app(tiny_index)).get("/embed/NCT00000004").headers
    assert policy["content-security-policy"].endswith("frame-ancestors 'none'")


@pytest.mark.parametrize(
    "sources",
    ["", "   ", "* ; script-src *", "a,b", "https://x.example\x00", "\u00e9"],
)
def test_embed_frame_ancestors_that_would_break_the_header_are_refused(
    tiny_index: Path, sources: str
) -> None:
    with pytest.raises(ValueError, match="frame ancestors"):
        create_app(tiny_index, embed_frame_ancestors=sources)


def test_embed_k_and_filters(client: TestClient) -> None:
    def items(query: str) -> list[str]:
        return [li["data-nct-id"] for li in Tags(client.get(f"/embed/{query}").text).named("li")]

    assert items("NCT00000004?k=1") == ["NCT00000005"]
    assert items("NCT00000004?status=WITHDRAWN") == ["NCT00000006"]
    assert items("NCT00000004?phase=PHASE1") == []


def test_embed_k_is_documented_with_its_default_of_ten(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/embed/{nct_id}"]["get"]
    (k,) = [p for p in operation["parameters"] if p["name"] == "k"]
    assert k["schema"] | {"default": 10, "minimum": 1, "maximum": 100} == k["schema"]


@pytest.mark.parametrize(
    ("nct_id", "status", "says"),
    [
        ("NCT09999999", 404, "NCT09999999 is not in this index"),
        ("12345678", 422, "is not an NCT id"),
    ],
)
def test_embed_bad_id_is_a_box_saying_so(
    client: TestClient, nct_id: str, status: int, says: str
) -> None:
    response = client.get(f"/embed/{nct_id}")
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")
    assert "frame-ancestors *" in response.headers["content-security-policy"]
    assert "No related trials to show: " in response.text and says in response.text
    assert "<li" not in response.text


@pytest.mark.parametrize("query", ["k=0", "k=101", "k=ten", "status=DONE"])
def test_embed_bad_parameter_is_a_422(client: TestClient, query: str) -> None:
    response = client.get(f"/embed/NCT00000004?{query}")
    assert response.status_code == 422
    assert response.json()["detail"].startswith("query parameter")


def test_embed_escapes_what_it_shows(client: TestClient) -> None:
    response = client.get("/embed/<b>x")
    assert response.status_code == 422
    assert "<b>x" not in response.text and "&#39;&lt;b&gt;x&#39; is not an NCT id" in response.text


# -- the page's results, made in Python ----------------------------------------------------


def test_result_items_escape_every_value_they_show() -> None:
    result = {
        "rank": 1, "nct_id": 'NCT"><b>', "title": "<script>x</script> & y", "title_made": True,
        "score": 0.5,
        "conditions": ["a<b"], "interventions": [], "phases": ["<PHASE>"], "status": "<S>",
        "why": [{"field": "<f>", "score": 0.5, "terms": ["<i>term</i>"]}],
    }  # fmt: skip
    html = str(result_items([result], "k=10&status=<x>"))
    tags = {tag for tag, _ in Tags(html).found}
    assert tags == {"li", "div", "a", "span"}  # no <b>, <script>, <i> from the values
    assert "&lt;script&gt;x&lt;/script&gt; &amp; y" in html and "a&lt;b" in html
    assert "&lt;i&gt;term&lt;/i&gt;" in html and "&lt;f&gt;" in html
    assert 'data-nct-id="NCT&#34;&gt;&lt;b&gt;"' in html
    assert "k=10&amp;status=&lt;x&gt;" in html


# -- the home page: what it is for, examples, what a score means -------------------------------


def test_the_home_page_says_what_it_is_for_and_offers_three_examples(client: TestClient) -> None:
    html = client.get("/").text
    purpose = re.search(r'<p class="lead" id="purpose">(.*?)</p>', html)
    assert purpose and "registered clinical trials most like yours" in purpose[1]
    examples = re.search(r'<p class="examples" id="examples">(.*?)</p>', html, re.S)
    links = re.findall(r'href="(/\?q=[^"]+)"', examples[1])
    kinds = ("a registered trial", "a draft trial", "a condition")
    assert [kind for kind in kinds if kind in examples[1]] == list(kinds)
    assert len(links) == 3 and links[0] == "/?q=NCT00000001"  # the reference case is not here
    for link in links:  # each example answers
        assert client.get(link.replace("&amp;", "&")).status_code in (200, 422)
    assert 'id="examples"' not in client.get("/?q=NCT00000004").text  # only on the empty page


def test_the_page_explains_the_score_as_a_relative_match(client: TestClient) -> None:
    html = client.get("/?q=NCT00000004&k=5").text
    note = re.search(r'<p class="hint" id="score-note">(.*?)</p>', html, re.S)[1]
    assert "relative match" in note and "not a percentage" in note
    widths = [float(w) for w in re.findall(r'<span style="width: ([0-9.]+)%">', html)]
    assert widths[0] == 100.0 and widths == sorted(widths, reverse=True)  # against the best
    scores = [float(s) for s in re.findall(r'<div class="score"[^>]*>([0-9.]+)', html)]
    assert widths[1] == pytest.approx(100 * scores[1] / scores[0], abs=0.1)
