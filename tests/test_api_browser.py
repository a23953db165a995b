"""The HTML in a real headless browser (Debian's ``chromium``), against the real server.

The browser resolves no host name, so anything the pages would fetch from the
internet (a CDN's script, a web font) fails as it would offline. Screenshots are
kept under ``tests/artifacts/`` (ignored by git) for a person to look at; their paths
are printed (``pytest -s`` shows them).
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from api.server import ServerProcess
from api.server.launch import LOOPBACK
from api.settings import FRAME_ANCESTORS_ENV
from tests.test_api import shared_tiny_index

pytestmark = pytest.mark.server

ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
WINDOW = (1200, 900)
# Time the page's own scripts get (Swagger UI fetches and renders the schema after load).
SCRIPT_TIME_MS = "15000"


@pytest.fixture(scope="module")
def tiny_index_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (Debian: apt-get install -y chromium)")
    return shared_tiny_index(tmp_path_factory)


@pytest.fixture(scope="module")
def server(tiny_index_path: Path):
    with ServerProcess(tiny_index_path) as running:
        yield running


def chromium(url: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    """Run headless Chromium once on ``url``, offline: only loopback addresses resolve."""
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--disable-extensions", "--hide-scrollbars",
        f"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE {LOOPBACK}",
        f"--user-data-dir={profile}", f"--window-size={WINDOW[0]},{WINDOW[1]}", *args, url,
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", header[16:24])


def test_page_lists_related_trials_in_the_browser(server: ServerProcess, tmp_path: Path) -> None:
    url = f"{server.url}/?q=NCT00000004"
    dom = chromium(url, tmp_path / "profile", "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    assert "Trials like: Inhaled corticosteroids for childhood asthma" in html
    assert 'data-nct-id="NCT00000005"' in html and 'data-nct-id="NCT00000006"' in html
    assert "Budesonide and formoterol in adult asthma" in html
    assert 'href="/?q=NCT00000005&amp;k=10"' in html
    assert '<span class="term">budesonide</span>' in html


def test_follow_a_link_to_its_own_related_list(server: ServerProcess, tmp_path: Path) -> None:
    dom = chromium(f"{server.url}/?q=NCT00000005&k=10", tmp_path / "profile", "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "Trials like: Budesonide and formoterol in adult asthma" in dom.stdout
    assert 'data-nct-id="NCT00000004"' in dom.stdout


def screenshot(
    url: str, name: str, profile: Path, *args: str, min_bytes: int = 15_000
) -> subprocess.CompletedProcess:
    """A screenshot of ``url`` in ``tests/artifacts/NAME.png``, checked not to be blank."""
    ARTIFACTS.mkdir(exist_ok=True)
    ignore = ARTIFACTS / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# screenshots and other test output: never committed\n*\n")
    shot = ARTIFACTS / f"{name}.png"
    shot.unlink(missing_ok=True)
    result = chromium(url, profile, f"--screenshot={shot}", *args)
    assert result.returncode == 0, result.stderr[-2000:]
    assert shot.is_file(), result.stderr[-2000:]
    assert png_size(shot) == WINDOW
    # A blank or error page compresses to a few KB; text, badges and bars do not.
    assert shot.stat().st_size > min_bytes
    print(f"\nscreenshot: {shot}")
    if os.environ.get("CI"):
        print("(tests/artifacts/ is git-ignored; collect it as a CI artefact)")
    return result


def test_screenshot_of_the_page(server: ServerProcess, tmp_path: Path) -> None:
    screenshot(f"{server.url}/?q=NCT00000001", "api_page_NCT00000001", tmp_path / "profile")


# -- the API docs, offline -----------------------------------------------------------------


def operations(server: ServerProcess) -> dict[tuple[str, str], str]:
    """(METHOD, path) -> operationId, for every operation in the service's OpenAPI schema."""
    schema = httpx.get(f"{server.url}/openapi.json", timeout=30).json()
    return {
        (method.upper(), path): operation["operationId"]
        for path, methods in schema["paths"].items()
        for method, operation in methods.items()
    }


def test_swagger_ui_renders_every_operation_offline(server: ServerProcess, tmp_path: Path) -> None:
    budget = f"--virtual-time-budget={SCRIPT_TIME_MS}"
    dom = chromium(f"{server.url}/docs", tmp_path / "profile", budget, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    shown = set(
        re.findall(
            r'<span class="opblock-summary-method">(\w+)</span>.*?data-path="([^"]+)"', dom.stdout
        )
    )
    assert ("GET", "/similar/{nct_id}") in shown, "Swagger UI did not render (a CDN fetch?)"
    assert shown == set(operations(server))
    screenshot(f"{server.url}/docs", "api_docs", tmp_path / "profile", budget)


def test_redoc_renders_every_operation_offline(server: ServerProcess, tmp_path: Path) -> None:
    budget = f"--virtual-time-budget={SCRIPT_TIME_MS}"
    dom = chromium(f"{server.url}/redoc", tmp_path / "profile", budget, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    shown = set(re.findall(r'data-section-id="operation/([^"]+)"', dom.stdout))
    assert "similar_similar__nct_id__get" in shown, "ReDoc did not render (a CDN fetch?)"
    assert shown == set(operations(server).values())


# -- a trial's page and the embeddable box ---------------------------------------------------


def test_trial_page_in_the_browser(server: ServerProcess, tmp_path: Path) -> None:
    url = f"{server.url}/trials/NCT00000004/page"
    dom = chromium(url, tmp_path / "profile", "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "<h2>Inhaled corticosteroids for childhood asthma</h2>" in dom.stdout
    assert 'href="https://clinicaltrials.gov/study/NCT00000004"' in dom.stdout
    assert 'href="/trials/NCT00000005/page"' in dom.stdout
    screenshot(url, "api_trial_NCT00000004", tmp_path / "profile")


@pytest.fixture
def registry_site() -> Iterator[dict[str, str]]:
    """Another origin (a loopback port of its own): it serves the pages put in the dict
    by path, and the dict's ``"origin"`` is its address."""
    pages: dict[str, str] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages.get(self.path, "").encode()
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    site = ThreadingHTTPServer((LOOPBACK, 0), Handler)
    thread = threading.Thread(target=site.serve_forever, daemon=True)
    thread.start()
    pages["origin"] = f"http://{LOOPBACK}:{site.server_address[1]}"
    yield pages
    site.shutdown()
    site.server_close()


def framing(box_url: str, site: dict[str, str], profile: Path, name: str, min_bytes: int) -> str:
    """Show ``box_url`` in an iframe of the registry site; Chromium's console log."""
    site["/trial"] = (
        '<!doctype html><html><body style="margin:24px;font-family:sans-serif">'
        "<h2>A trial on a registry site</h2>"
        f'<iframe src="{box_url}" width="420" height="560" style="border:0" '
        'title="Related clinical trials"></iframe></body></html>'
    )
    page = f"{site['origin']}/trial"
    return screenshot(page, name, profile, "--enable-logging=stderr", min_bytes=min_bytes).stderr


def test_embed_shows_in_another_sites_frame(
    server: ServerProcess, registry_site: dict[str, str], tmp_path: Path
) -> None:
    box = f"{server.url}/embed/NCT00000004?k=5"
    dom = chromium(box, tmp_path / "profile", "--dump-dom")
    assert 'data-nct-id="NCT00000005"' in dom.stdout and 'target="_blank"' in dom.stdout
    log = framing(box, registry_site, tmp_path / "profile", "api_embed_NCT00000004", 15_000)
    assert "Content Security Policy" not in log, log[-2000:]


def test_embed_frame_refused_to_sites_not_allowed(
    tiny_index_path: Path, registry_site: dict[str, str], tmp_path: Path
) -> None:
    # The check above can fail: the same frame, from a service that allows no site.
    with ServerProcess(tiny_index_path, env={FRAME_ANCESTORS_ENV: "'none'"}) as strict:
        box = f"{strict.url}/embed/NCT00000004"
        log = framing(box, registry_site, tmp_path / "profile", "api_embed_refused", 0)
    assert "violates the following Content Security Policy directive" in log
