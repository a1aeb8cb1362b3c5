"""Accessibility audit (axe-core, bundled by axe-playwright-python) of every page type in headless Chromium: gallery,
prompt page, pair page, course, training, faithfulness, judged figures and embeds report no serious or critical
violation; a page given an unlabeled image does."""

from __future__ import annotations

import json

import fakechapters  # (tests/render/fakechapters.py, on sys.path through tests/browser/conftest.py)
import fakesite
import pytest
from accessibility_audit import describe, scroll_through, violations
from browser_helpers import serve, watched_page
from PIL import Image

pytestmark = pytest.mark.browser

PAGES = {
    "gallery": "generated/gallery.html",
    "prompt page (DAAM, variants, verdicts)": "generated/pages/red-cat.html",
    "pair page": "generated/pages/two-dogs.html",
    "course": "generated/course.html",
    "training": "generated/training.html",
    "faithfulness": "generated/faithfulness.html",
    "judged figures": "generated/quality.html",
    "home": "index.html",
    "embed: trajectory": "embed/red-cat-trajectory.html",
    "embed: prompt pair": "embed/two-dogs-compare.html",
    "embed: variants": "embed/red-cat-variants.html",
    "embed: course figure": "embed/course-course-sdedit-scene.html",
}


def make_pair(generated) -> None:
    """Give the fixture's second prompt a pair ("compare": its strips, a judged final image, a difference sheet)."""
    path = generated / "prompts" / "two-dogs.json"
    manifest = json.loads(path.read_text())
    traj = manifest["trajectory"]
    count = traj["steps"] + 1
    width, height, columns = traj["predicted"]["frame_width"], traj["predicted"]["frame_height"], traj["predicted"]["columns"]
    sheet = Image.new("L", (columns * width, -(-count // columns) * height))
    for i in range(count):
        sheet.paste(60 * i, (i % columns * width, i // columns * height, (i % columns + 1) * width, (i // columns + 1) * height))
    difference = fakechapters.asset(generated, sheet)
    words = manifest["text"].split()
    manifest["compare"] = {
        "text": "two *cats* playing in the [park] <b>&</b>",
        "diff": {"a": [{"word": w, "changed": w == "*dogs*"} for w in words],
                 "b": [{"word": w.replace("dogs", "cats"), "changed": w == "*dogs*"} for w in words]},
        "noisy": traj["noisy"], "predicted": traj["predicted"],
        "final": {**fakechapters.asset(generated, Image.new("RGB", (64, 48), (9, 99, 9))),
                  "verdict": {**fakesite.DISAGREES, "expect": {"outcome": "fail", "reason": fakesite.BINDING}}},
        "x0_distance": [0.9, 0.5, 0.2][:count],
        "difference": {"src": difference["src"], "frame_width": width, "frame_height": height, "columns": columns,
                       "count": count, "mean": [0.5, 0.25, 0.1][:count]},
    }
    path.write_text(json.dumps(manifest, sort_keys=True, indent=1))


def prepare(generated) -> None:
    """Verdicts, variants, a pair and all three chapters on the fixture site."""
    fakesite.judge_fake_site(generated, expect_fail=True, variants=True)
    make_pair(generated)
    for kind in ("experiments", "training", "faithfulness"):
        fakechapters.write_chapter(generated, kind)


@pytest.fixture(scope="module")
def audit_url(tmp_path_factory):
    with serve(fakesite.build_fixture_site(tmp_path_factory.mktemp("a11y-site"), prepare)) as url:
        yield url


@pytest.fixture
def audited(browser, audit_url):
    with watched_page(browser, audit_url) as watched:
        yield watched


@pytest.mark.parametrize("what", list(PAGES))
def test_no_serious_or_critical_accessibility_violation(audited, audit_url, what):
    page = audited.page
    page.goto(f"{audit_url}/{PAGES[what]}")
    page.wait_for_load_state("load")
    scroll_through(page)
    found = violations(page)
    assert found == [], f"{what} ({PAGES[what]}):\n{describe(found)}"
    audited.assert_clean()


def test_every_image_says_what_it_shows(audited, audit_url):
    page = audited.page
    page.goto(f"{audit_url}/generated/pages/two-dogs.html")
    page.wait_for_selector("#compare-two-dogs[data-atlas-mounted], #compare-two-dogs[data-follow-mounted]")
    alts = page.eval_on_selector_all("img", "els => els.map(e => e.getAttribute('alt'))")
    assert alts and all(alt and alt.strip() for alt in alts), alts
    final = page.get_attribute("img.atlas-final", "alt")
    assert final.startswith("Final image of “two *dogs* playing in the [park] <b>&</b>”")  # the prompt, unescaped once
    assert "the shapes checker found: red circle (right), blue square (wrong: a red square)" in final  # what was found
    pair = page.locator("#compare-two-dogs .atlas-pair-final img").nth(1).get_attribute("alt")
    assert pair.startswith("Final image of “two *cats* playing") and "(an expected failure)" in pair
    heat = "#compare-two-dogs .atlas-sprite[data-role=difference]"
    assert "at step 0 of 2" in page.get_attribute(heat, "aria-label")
    page.fill("#compare-two-dogs input[data-follow=range]", "2")  # the label follows the step
    assert "at step 2 of 2" in page.get_attribute(heat, "aria-label")
    labels = page.eval_on_selector_all("#compare-two-dogs .atlas-sprite", "els => els.map(e => e.getAttribute('aria-label'))")
    assert all("step 2 of 2" in label for label in labels) and any("two *cats*" in label for label in labels)
    audited.assert_clean()


def test_the_audit_fails_a_page_given_an_unlabeled_image(audited, audit_url):
    page = audited.page
    page.goto(f"{audit_url}/{PAGES['pair page']}")
    assert violations(page) == []
    src = page.get_attribute("img.atlas-final", "src")
    page.evaluate("src => { const img = document.createElement('img'); img.src = src; img.id = 'unlabeled';"
                  " document.querySelector('article').prepend(img); }", src)
    found = violations(page)
    assert [v["id"] for v in found] == ["image-alt"] and found[0]["impact"] == "critical"
    assert found[0]["nodes"][0]["target"] == ["#unlabeled"]


@pytest.mark.parametrize("what", ["gallery", "pair page", "embed: prompt pair", "judged figures"])
def test_the_dark_scheme_passes_too(browser, audit_url, what):
    with watched_page(browser, audit_url, color_scheme="dark") as watched:
        page = watched.page
        page.goto(f"{audit_url}/{PAGES[what]}")
        page.wait_for_load_state("load")
        scroll_through(page)
        found = violations(page)
        assert found == [], f"{what} ({PAGES[what]}), dark:\n{describe(found)}"
        watched.assert_clean()


# The same audit on a real bake of every page type (tests/browser/real_bake_site.py: the shipped shapes and digits
# models with reduced settings), not fixtures: what the default site's bake writes is what is audited.
REAL_PAGES = {
    "gallery": "generated/gallery.html",
    "prompt page: pair, variants, DAAM, jumps, guidance, schedule": "generated/pages/two-green-triangles.html",
    "class-conditioned prompt page": "generated/pages/digit-7.html",
    "course": "generated/course.html",
    "training": "generated/training.html",
    "faithfulness": "generated/faithfulness.html",
    "DAAM findings": "generated/daam-findings.html",
    "judged figures": "generated/quality.html",
    "home": "index.html",
    "embed: guidance": "embed/two-green-triangles-guidance.html",
    "embed: prompt pair": "embed/two-green-triangles-compare.html",
    "embed: variants": "embed/two-green-triangles-variants.html",
    "embed: DAAM": "embed/two-green-triangles-daam.html",
    "embed: pipeline": "embed/digit-7-pipeline.html",
}


DARK_ON_FIXTURES = ("gallery", "judged figures")  # test_the_dark_scheme_passes_too


@pytest.fixture(scope="module")
def real_url(tmp_path_factory):
    import real_bake_site

    with serve(real_bake_site.bake_real_site(tmp_path_factory.mktemp("a11y-real"))) as url:
        yield url


@pytest.mark.slow
def test_a_real_bake_of_every_page_type_has_no_serious_or_critical_violation(browser, real_url):
    failures = []
    for scheme in ("light", "dark"):
        with watched_page(browser, real_url, color_scheme=scheme) as watched:
            page = watched.page
            for what, url in REAL_PAGES.items():
                if scheme == "dark" and (what.startswith("embed") or what in DARK_ON_FIXTURES):
                    continue  # embeds share the pages' stylesheets; the fixture site's dark pass covers the others
                page.goto(f"{real_url}/{url}")
                page.wait_for_load_state("load")
                scroll_through(page)
                found = violations(page)
                if found:
                    failures.append(f"{what} ({url}), {scheme}:\n{describe(found)}")
            watched.assert_clean()
    assert failures == [], "\n".join(failures)
