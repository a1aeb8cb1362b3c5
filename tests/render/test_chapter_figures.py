"""Chapter figures for teaching, as rendered: slide downloads, the seeds an anagram or hybrid was tried at, MNIST's
credit (from the fake chapter manifests of fakechapters.py, no torch)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from fakechapters import write_chapter

from generator.render import render_site


def _render(site: Path, kind: str) -> tuple[dict, str]:
    generated = site / "generated"
    path = write_chapter(generated, kind)
    render_site(generated, site)
    page = {"experiments": "course", "training": "training"}[kind]
    return json.loads(path.read_text()), (generated / f"{page}.md").read_text()


def _links(markup: str) -> dict[str, str]:
    """download name -> href of every download link."""
    return {name: href for href, name in re.findall(r'<a href="([^"]+)" download="([^"]+)"', markup)}


def test_every_course_figure_with_slide_files_links_them_under_their_names(site: Path) -> None:
    manifest, page = _render(site, "experiments")
    links = _links(page)
    for entry in manifest["anagrams"] + manifest["hybrids"]:
        files = entry["downloads"]
        for kind, key in (("png", "png"), ("gif", "gif"), ("mp4", "mp4"), ("txt", "caption")):
            assert links[f"{files['name']}.{kind}"] == files[key]["src"]  # relative to the page in generated/
    embed = (site / "embed" / "course-course-anagram-a.html").read_text()  # the embed offers them too
    caption = manifest["anagrams"][0]["downloads"]["caption"]["src"]
    assert _links(embed)["course-course-anagram-a.txt"] == "../generated/" + caption


def test_the_page_lists_every_seed_tried_with_its_verdict_and_the_rate(site: Path) -> None:
    manifest, page = _render(site, "experiments")
    anagram = page[page.index('id="course-course-anagram-a"'):page.index('id="course-course-hybrid-h"')]
    seeds = re.search(r'<div class="atlas-course-seeds" ([^>]*)>', anagram).group(1)
    assert 'data-tried="3" data-passed="2" data-shown="1" data-rule="first-pass"' in seeds
    assert "in <strong>2 of 3</strong> (67%). Shown: seed 1, the first that passed." in anagram
    cell = r'<figure class="atlas-course-cell" data-seed="(\d)" data-passed="(\w+)"><img [^>]*title="([^"]*)"'
    cells = re.findall(cell, anagram)
    assert [(seed, passed) for seed, passed, _ in cells] == [("0", "false"), ("1", "true"), ("2", "true")]
    assert "upright: asked: up · found: up ✗ (nothing)" in cells[0][2].replace("&#34;", '"')
    hybrid = page[page.index('id="course-course-hybrid-h"'):]
    assert "<strong>none passed</strong> (0 of 2). Shown: seed 0, the closest (50% of what both prompts ask holds), " \
           "marked failed." in hybrid
    quality = json.loads((site / "generated" / "quality.json").read_text())
    assert not any("/pick/" in f["path"] for f in quality["figures"])  # the tries are records, not published figures


def test_a_training_chapter_of_mnist_digits_credits_mnist_and_links_its_slide_files(site: Path) -> None:
    manifest, page = _render(site, "training")
    assert "Yann LeCun, Corinna Cortes and Christopher J.C. Burges, CC BY-SA 3.0" in page
    assert 'data-role="digits-fallback"' not in page
    links = _links(page)
    assert links["training-digits-forward.png"] == manifest["forward"]["downloads"]["png"]["src"]
    assert links["training-digits-losses.txt"] == manifest["losses_downloads"]["caption"]["src"]
    assert links["training-digits-epochs-time.gif"] == manifest["time"]["downloads"]["gif"]["src"]
    assert links["training-digits-epochs-time.mp4"] == manifest["time"]["downloads"]["mp4"]["src"]
