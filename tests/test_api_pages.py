"""The HTML for people, in process: the API docs work offline."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from tests.test_api import shared_tiny_index

URL = re.compile(r"""(?:https?:)?//[^\s"'<>)]+""")


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
