"""The HTML page in a real headless browser (Debian's ``chromium``), against the real server.

The screenshot is kept under ``tests/artifacts/`` (ignored by git) for a person to
look at; its path is printed (``pytest -s`` shows it).
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from api.launch import ServerProcess
from tests.test_api import shared_tiny_index

pytestmark = pytest.mark.server

ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
WINDOW = (1200, 900)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (Debian: apt-get install -y chromium)")
    with ServerProcess(shared_tiny_index(tmp_path_factory)) as running:
        yield running


def chromium(url: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    """Run headless Chromium once on ``url``; no network but loopback is involved."""
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--disable-extensions", "--hide-scrollbars",
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


def test_screenshot_of_the_page(server: ServerProcess, tmp_path: Path) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    ignore = ARTIFACTS / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# screenshots and other test output: never committed\n*\n")
    shot = ARTIFACTS / "api_page_NCT00000001.png"
    shot.unlink(missing_ok=True)
    result = chromium(f"{server.url}/?q=NCT00000001", tmp_path / "profile", f"--screenshot={shot}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert shot.is_file(), result.stderr[-2000:]
    assert png_size(shot) == WINDOW
    # A blank or error page compresses to a few KB; text, badges and bars do not.
    assert shot.stat().st_size > 15_000
    print(f"\nscreenshot: {shot}")
    if os.environ.get("CI"):
        print("(tests/artifacts/ is git-ignored; collect it as a CI artefact)")
