"""Browser fixtures: the fixture site built once, served on 127.0.0.1, and a headless Chromium."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "render"))
import fakesite  # noqa: E402  (tests/render/fakesite.py: fake bake output + fixture site build)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from browser_helpers import Watched, serve  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")

IFRAME_TEST = """<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>host</title></head>
<body><p>A course page that embeds a figure:</p>
<iframe id="fig" src="embed/red-cat-trajectory.html?theme=dark#traj-red-cat=1" width="600" height="560" style="border:0"></iframe>
</body></html>"""


@pytest.fixture(scope="session")
def built_site(tmp_path_factory) -> Path:
    built = fakesite.build_fixture_site(tmp_path_factory.mktemp("atlas-site"))
    (built / "iframe-test.html").write_text(IFRAME_TEST)  # a third-party page hosting an embed
    return built


@pytest.fixture(scope="session")
def base_url(built_site):
    with serve(built_site) as url:
        yield url


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists() and not shutil.which("chromium"):
        pytest.skip("browser tests need Chromium at /usr/bin/chromium (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="browser tests need playwright (pip install playwright)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=str(CHROMIUM if CHROMIUM.exists() else shutil.which("chromium")),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield b
        b.close()


@pytest.fixture
def watched(browser, base_url):
    context = browser.new_context(viewport={"width": 1000, "height": 900}, device_scale_factor=1)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base_url)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield Watched(page, base_url)
    context.close()
