"""Render: the judge's verdicts on pages (one line, same words everywhere), quality.json, the judged-figures page and
the build that fails on an unexpected disagreement (fake bake output; no torch)."""

from __future__ import annotations

import html
import json
import re
import sys
from pathlib import Path

import pytest
from fakechapters import write_chapter
from fakesite import (
    AGREES,
    AGREES_LINE,
    BINDING,
    DISAGREES,
    DISAGREES_LINE,
    copy_site,
    judge_fake_site,
    write_fake_generated,
)

from generator.render import render_site
from generator.render.site import environment
from generator.render.verdicts import (
    JudgedFigure,
    find_verdicts,
    judged_figures,
    quality_report,
    verdict_text,
    verdict_view,
)


def visible_text(markup: str) -> str:
    """What a sighted reader sees: the markup without its screen-reader-only spans and tags."""
    markup = re.sub(r'<span class="atlas-sr">[^<]*</span>', "", markup)
    return html.unescape(re.sub(r"<[^>]+>", "", markup)).strip()


def spoken_text(markup: str) -> str:
    """What a screen reader reads: the markup without what is aria-hidden, and without tags."""
    markup = re.sub(r'<span aria-hidden="true">[^<]*</span>', "", markup)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", markup)).split())


def line(verdict: dict | None, label: str = "") -> str:
    """The verdict_line macro's markup."""
    template = environment().from_string('{% from "verdict.html.j2" import verdict_line %}{{ verdict_line(v, label) }}')
    return template.render(v=verdict, label=label)


def test_verdict_line_reads_asked_then_each_claim_right_or_wrong_with_what_was_found():
    assert verdict_text(DISAGREES) == DISAGREES_LINE
    assert verdict_text(AGREES) == AGREES_LINE
    markup = line(DISAGREES)
    assert visible_text(markup) == DISAGREES_LINE  # the page says exactly what quality.json and the build say
    spoken = spoken_text(markup)  # not only ✓ / ✗: the words
    assert spoken.startswith("Checked by the shapes checker: the image does not agree with its prompt.")
    assert "red circle right" in spoken and "blue square wrong, found (a red square)" in spoken and "✗" not in spoken
    assert 'data-verdict="disagrees"' in markup
    assert line(None) == "" and line({}) == ""  # not judged: nothing at all


def test_expected_failure_says_so_with_its_reason_and_a_label_prefixes_the_line():
    expected = {**DISAGREES, "expect": {"outcome": "fail", "reason": BINDING}}
    assert verdict_text(expected) == f"{DISAGREES_LINE} · expected failure: {BINDING}"
    markup = line(expected, "upright")
    assert visible_text(markup) == f"upright: {DISAGREES_LINE} · expected failure: {BINDING}"
    assert verdict_view(expected)["status"] == "expected" and 'data-verdict="expected"' in markup
    stale = {**AGREES, "expect": {"outcome": "fail", "reason": BINDING}}  # marked, yet it agrees: said so
    assert verdict_text(stale) == f"{AGREES_LINE} · marked expected failure, but agrees: {BINDING}"
    assert verdict_view(stale)["status"] == "agrees"


def test_a_grid_of_many_claims_is_tallied_with_its_wrong_ones_listed():
    claims = [{"kind": "digit", "asked": str(i % 10), "found": str(i % 10), "correct": True} for i in range(38)]
    claims[3] = {"kind": "digit", "asked": "3", "found": "8 (0.55)", "correct": False}
    grid = {"judge": "digits", "asked": "38 samples: 0-9, at least 95% right", "agrees": True, "claims": claims}
    assert verdict_text(grid) == "asked: 38 samples: 0-9, at least 95% right · found: 37 of 38 right, 3 ✗ (8 (0.55))"
    assert visible_text(line(grid)) == verdict_text(grid)


def test_verdicts_are_found_anywhere_in_a_manifest_and_sorted_by_page_and_place():
    chapter = {"samples": {"by_steps": [{"image": {"src": f"assets/{i}.png", "verdict": AGREES}} for i in range(12)]},
               "anagrams": [{"views": [{"view": "upright", "image": {"src": "assets/u.png", "verdict": DISAGREES}}]}],
               "inputs": {"scene": {"src": "assets/s.png"}}, "note": {"verdict": "not a verdict"}}
    found = [path for path, _ in find_verdicts(chapter)]
    assert ("anagrams", 0, "views", 0, "image") in found and len(found) == 13
    figures = judged_figures("course.html", "Course", "experiments/c.json", chapter)
    report = quality_report(figures[::-1] + judged_figures("pages/a.html", "A", "prompts/a.json", {"final": {"src": "x", "verdict": AGREES}}))
    pointers = [f.pointer for f in report.figures]
    assert pointers[0] == "/anagrams/0/views/0/image" and pointers[1:4] == [f"/samples/by_steps/{i}/image" for i in (0, 1, 2)]
    assert pointers[-2] == "/samples/by_steps/11/image" and report.figures[-1].page == "pages/a.html"  # 11 after 2


def test_summary_counts_agreeing_expected_and_unexpected_figures():
    def figure(n: int, verdict: dict) -> JudgedFigure:
        return JudgedFigure("pages/p.html", "P", "prompts/p.json", ("items", n), f"assets/{n}.png", verdict)

    expected = {**DISAGREES, "expect": {"outcome": "fail", "reason": "binding"}}
    report = quality_report([figure(0, AGREES), figure(1, AGREES), figure(2, expected), figure(3, expected)])
    assert report.summary() == "2 of 4 judged figures agree with their prompt; 2 are marked expected failures"
    assert report.failure() is None
    report = quality_report([figure(0, AGREES), figure(1, expected), figure(2, DISAGREES)])
    assert report.summary() == ("1 of 3 judged figures agree with their prompt; 1 is marked expected failure; "
                                "1 disagrees unexpectedly")
    assert report.failure().startswith(f"pages/p.html (/items/2) disagrees with its prompt: {DISAGREES_LINE};")
    assert quality_report([figure(0, DISAGREES)]).summary() == (
        "0 of 1 judged figure agrees with its prompt; 0 are marked expected failures; 1 disagrees unexpectedly")
    assert quality_report([]).summary().startswith("no figure was judged")
    stale = {**AGREES, "expect": {"outcome": "fail", "reason": "binding"}}  # marked, but agrees after all
    report = quality_report([figure(0, stale), figure(1, expected), figure(2, DISAGREES)])
    assert (report.agree, report.expected, len(report.unexpected)) == (1, 1, 1)  # every figure counted once


def test_render_shows_the_lines_badges_quality_json_and_page(site):
    judge_fake_site(site / "generated", expect_fail=True, variants=True)
    write_chapter(site / "generated", "experiments")
    chapter_path = site / "generated" / "experiments" / "course.json"
    chapter = json.loads(chapter_path.read_text())
    chapter["inpaint"][0]["result"]["verdict"] = AGREES
    chapter_path.write_text(json.dumps(chapter))
    result = render_site(site / "generated", site)
    gen = site / "generated"

    page = (gen / "pages" / "red-cat.md").read_text()
    final = page[page.index('<img class="atlas-final"'):]
    final = final[final.index("</p>") + 4:]  # after the image's own paragraph
    assert visible_text(final[:final.index("</p>") + 4].split("\n\n")[-1]) == AGREES_LINE  # right under the image
    variants = page[page.index('data-atlas="variants"'):]  # one line per variant, the shown one visible
    assert re.search(r'<div data-variant="0"><p class="atlas-verdict atlas-verdict-agrees"', variants)
    assert re.search(r'<div data-variant="1" hidden><p class="atlas-verdict atlas-verdict-disagrees"', variants)
    assert "atlas-verdict" in (site / "embed" / "red-cat-variants.html").read_text()
    assert AGREES_LINE.split(" · ")[0] in visible_text((site / "embed" / "red-cat-trajectory.html").read_text())
    gallery = (gen / "gallery.md").read_text()
    assert 'atlas-badge-agrees' in gallery and 'atlas-badge-expected' in gallery and "expected failure</span>" in gallery
    assert "atlas-verdict-agrees" in (gen / "course.md").read_text()  # the inpainting result's line

    quality = json.loads((gen / "quality.json").read_text())
    assert [(f["page"], f["path"], f["status"]) for f in quality["figures"]] == [
        ("course.html", "/inpaint/0/result", "agrees"),
        ("pages/red-cat.html", "/final", "agrees"),
        ("pages/red-cat.html", "/variants/items/0/final", "agrees"),
        ("pages/red-cat.html", "/variants/items/1/final", "disagrees"),
        ("pages/two-dogs.html", "/final", "expected")]
    two_dogs = quality["figures"][-1]
    assert two_dogs["expected_failure"] and two_dogs["reason"] == BINDING and two_dogs["manifest"] == "prompts/two-dogs.json"
    assert two_dogs["line"] == f"{DISAGREES_LINE} · expected failure: {BINDING}" and two_dogs["claims"] == DISAGREES["claims"]
    assert (quality["judged"], quality["agree"], quality["expected_failures"], quality["unexpected"]) == (5, 3, 1, 1)
    assert result.quality.to_json() == quality
    listing = (gen / "quality.md").read_text()
    assert listing.count("<tr data-verdict=") == 5 and 'href="pages/two-dogs.html"' in listing
    render_site(gen, site)  # deterministic: a second render changes nothing
    assert json.loads((gen / "quality.json").read_text()) == quality


@pytest.fixture
def project(tmp_path: Path, monkeypatch) -> Path:
    """A project folder whose `diffatlas build` renders the fake bake output (baking itself replaced)."""
    copy_site(tmp_path)
    monkeypatch.chdir(tmp_path)
    generated = tmp_path / "site" / "generated"
    write_fake_generated(generated)
    index = json.loads((generated / "index.json").read_text())
    import generator.bake.manifest
    import generator.cli.commands as commands

    monkeypatch.setattr(commands, "_checked_set", lambda *args, **kwargs: (None, None))
    monkeypatch.setattr(commands, "_bake", lambda *args, **kwargs: None)
    monkeypatch.setattr(generator.bake.manifest, "merge_index", lambda *args, **kwargs: index)
    (tmp_path / "prompts.yaml").write_text("model: embedded:shapes\nprompts: []\n")
    return tmp_path


def build(monkeypatch, capsys) -> tuple[int, str]:
    """Run `diffatlas build prompts.yaml` through the console script's entry point: (exit code, stderr)."""
    from generator.cli import main

    monkeypatch.setattr(sys, "argv", ["diffatlas", "build", "prompts.yaml"])
    try:
        main()
        code = 0
    except SystemExit as exit_:
        code = exit_.code or 0
    return code, capsys.readouterr().err


def test_build_fails_on_an_unexpected_disagreement_naming_the_figure_after_writing_the_site(project, monkeypatch, capsys):
    judge_fake_site(project / "site" / "generated", expect_fail=False)
    code, err = build(monkeypatch, capsys)
    assert code != 0
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "pages/two-dogs.html" in errors[0] and "a red circle above a blue square" in errors[0]
    assert "1 of 2 judged figures agree with their prompt; 0 are marked expected failures; 1 disagrees unexpectedly" in err
    assert (project / "build" / "site" / "generated" / "quality.html").is_file()  # written before failing


def test_build_passes_when_the_disagreement_is_an_expected_failure(project, monkeypatch, capsys):
    judge_fake_site(project / "site" / "generated", expect_fail=True)
    code, err = build(monkeypatch, capsys)
    assert code == 0, err
    assert err.rstrip().splitlines()[-1] == "1 of 2 judged figures agree with their prompt; 1 is marked expected failure"
    listed = json.loads((project / "site" / "generated" / "quality.json").read_text())["figures"]
    assert [(f["page"], f["status"], f["reason"]) for f in listed] == [
        ("pages/red-cat.html", "agrees", None), ("pages/two-dogs.html", "expected", BINDING)]
    page = (project / "build" / "site" / "generated" / "quality.html").read_text()
    assert "expected failure: " + html.escape(BINDING, quote=False) in page


def test_hostile_prompt_text_in_a_verdict_stays_text_on_one_line():
    hostile = {**AGREES, "asked": 'a <script>alert(1)</script>\n\n# red "circle" *x*',
               "claims": [{"kind": "object", "asked": "red\ncircle", "found": "<img src=x onerror=alert(1)>", "correct": False}]}
    markup = line(hostile)
    assert "<script" not in markup and "<img" not in markup and "\n" not in markup
    assert visible_text(markup) == 'asked: a <script>alert(1)</script> # red "circle" *x* · found: red circle ✗ (<img src=x onerror=alert(1)>)'


def test_every_img_of_a_final_image_names_its_prompt_and_verdict(site):
    # issue 17: the pipeline overview's image panel and the DAAM widget showed the final image as "Final image"
    judge_fake_site(site / "generated")
    render_site(site / "generated", site)
    manifest = json.loads((site / "generated" / "prompts" / "red-cat.json").read_text())
    name = Path(manifest["final"]["src"]).name
    page = (site / "generated" / "pages" / "red-cat.md").read_text()
    alts = [html.unescape(alt) for alt in re.findall(rf'<img [^>]*src="[^"]*{name}"[^>]*alt="([^"]*)"', page)]
    assert len(alts) == 2  # the final image itself and the DAAM widget (this fixture has no pipeline section)
    assert all(alt.startswith(f"Final image of “{manifest['text']}”") and "right" in alt for alt in alts), alts
