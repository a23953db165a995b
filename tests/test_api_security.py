"""Headers a browser needs to be safe with this service, on every answer (issue 27).

``X-Content-Type-Options: nosniff`` on every response, JSON, HTML, CSS, errors, 304s
and the 500 of an unexpected error; a frame policy on every HTML page
(``frame-ancestors 'self'`` by default, configurable like the box's), while the box
at ``/embed`` keeps its own policy. Before the fix no response had ``nosniff`` and
only ``/embed`` said who may frame it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import PAGE_FRAME_ANCESTORS_ENV
from tests.test_api import shared_tiny_index


@pytest.fixture(scope="module")
def tiny_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_tiny_index(tmp_path_factory)


@pytest.fixture(scope="module")
def client(tiny_index: Path) -> TestClient:
    app = create_app(tiny_index, warm=False, max_body_bytes=1000)

    @app.get("/boom", include_in_schema=False)
    def boom() -> None:
        raise RuntimeError("an error nobody handles")

    return TestClient(app, raise_server_exceptions=False)


ANSWERS = [
    ("GET", "/similar/NCT00000001", {}, 200),  # the fast path
    ("GET", "/similar/NCT00000001?phase=PHASE2", {}, 200),  # the route
    ("GET", "/similar/NCT09999999", {}, 404),
    ("GET", "/similar/NCT1", {}, 422),
    ("POST", "/similar", {"json": {"text": "x" * 2000}}, 413),
    ("POST", "/similar", {"json": {"text": "liver failure"}}, 200),
    ("GET", "/trials/NCT00000001", {}, 200),
    ("GET", "/", {}, 200),
    ("GET", "/?q=NCT00000001", {}, 200),  # the page's fast path
    ("GET", "/?q=liver+failure", {}, 200),
    ("GET", "/trials/NCT00000001/page", {}, 200),
    ("GET", "/trials/NCT09999999/page", {}, 404),
    ("GET", "/embed/NCT00000001", {}, 200),
    ("GET", "/static/site.css", {}, 200),
    ("GET", "/docs", {}, 200),
    ("GET", "/redoc", {}, 200),
    ("GET", "/openapi.json", {}, 200),
    ("GET", "/health", {}, 200),
    ("GET", "/metrics", {}, 200),
    ("POST", "/admin/reload", {}, 404),
    ("GET", "/nowhere", {}, 404),
    ("GET", "/boom", {}, 500),
]


@pytest.mark.parametrize(("method", "path", "options", "status"), ANSWERS)
def test_every_answer_says_nosniff(client, method, path, options, status):
    response = client.request(method, path, **options)
    assert response.status_code == status
    assert response.headers.get_list("x-content-type-options") == ["nosniff"]


def test_a_304_says_nosniff_too(client):
    etag = client.get("/similar/NCT00000001").headers["etag"]
    response = client.get("/similar/NCT00000001", headers={"If-None-Match": etag})
    assert response.status_code == 304
    assert response.headers["x-content-type-options"] == "nosniff"


PAGES = ["/", "/?q=NCT00000001", "/?q=liver", "/trials/NCT00000001/page",
         "/trials/NCT09999999/page", "/docs", "/redoc"]  # fmt: skip


@pytest.mark.parametrize("path", PAGES)
def test_every_page_may_be_framed_by_this_site_only(client, path):
    response = client.get(path)
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-security-policy"] == "frame-ancestors 'self'"
    assert response.headers["x-frame-options"] == "SAMEORIGIN"  # for browsers before CSP 2


def test_json_carries_no_frame_policy_and_the_box_keeps_its_own(client):
    assert "content-security-policy" not in client.get("/similar/NCT00000001").headers
    box = client.get("/embed/NCT00000001")
    assert box.headers["content-security-policy"].endswith("frame-ancestors *")
    assert "x-frame-options" not in box.headers


def test_the_pages_frame_policy_is_configurable(tiny_index, monkeypatch):
    app = create_app(tiny_index, warm=False, page_frame_ancestors="'self' https://a.example")
    page = TestClient(app).get("/")
    assert page.headers["content-security-policy"] == "frame-ancestors 'self' https://a.example"
    assert "x-frame-options" not in page.headers  # it cannot say as much: left out
    monkeypatch.setenv(PAGE_FRAME_ANCESTORS_ENV, "'none'")
    page = TestClient(create_app(tiny_index, warm=False)).get("/trials/NCT00000001/page")
    assert page.headers["content-security-policy"] == "frame-ancestors 'none'"
    assert page.headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize("sources", ["", "'self'; script-src *", "a,b"])
def test_a_frame_policy_that_would_break_the_header_is_refused(tiny_index, sources):
    with pytest.raises(ValueError, match="frame ancestors"):
        create_app(tiny_index, warm=False, page_frame_ancestors=sources)
