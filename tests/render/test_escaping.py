"""Render stage: escaping of prompt-file strings, the CSP audit, and a render interrupted half-way."""

from __future__ import annotations

import html
import json
import os
from pathlib import Path

import markdown
import pytest
import yaml

from generator.render import publish, render_site
from generator.render.csp import audit_page, policy, script_hash, theme_script_hashes
from generator.render.escape import front_matter_string, html_json, md_escape

HOSTILE = [
    "a cat <script>alert(1)</script> on a mat",
    'a dog "><img src=x onerror=alert(2)> in a park',
    "[click](javascript:alert(3)) and <javascript:alert(4)>",
    "{{ 7*7 }} {% raw %} {# c #}",
    "---\ntitle: pwned\n---",
    "# heading {: onclick=alert(5) } *em* _u_ `code` ~strike~ | pipe \\ back",
    "\u202eevil\u200b zero\u200dwidth 😀 é 中文 \u2028 line",
    "a\n\n    indented code\n\n<div>",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_md_escape_renders_the_exact_text_and_no_markup(text: str) -> None:
    rendered = markdown.Markdown(extensions=["toc", "attr_list", "md_in_html", "tables"]).convert(f"# {md_escape(text)}")
    assert rendered.startswith("<h1") and rendered.count("<") == 2, rendered  # one <h1>, one </h1>, nothing inside
    inner = rendered[rendered.index(">") + 1: rendered.rindex("</h1>")]
    assert html.unescape(inner) == text


@pytest.mark.parametrize("text", HOSTILE)
def test_front_matter_title_is_yaml_quoted_html(text: str) -> None:
    line = f"title: {front_matter_string(text)}"
    assert line.isascii() and "\n" not in line and "<" not in line
    value = yaml.safe_load(line)["title"]
    assert not set(value) & set("<>\"'") and html.unescape(value) == text


def test_html_json_cannot_close_an_attribute_or_script() -> None:
    value = {"label": "</script><img onerror=x> ' \" & \u2028"}
    text = str(html_json(value))
    assert not set(text) & set("<>&'") and "\u2028" not in text
    assert json.loads(text) == value


def test_audit_names_what_the_policy_blocks() -> None:
    allowed = frozenset({script_hash("theme()")})
    content = policy(allowed)
    page = (f'<html><head><meta http-equiv="Content-Security-Policy" content="{content}"><script>theme()</script>'
            '</head><body><h1>ok</h1><script src="a.js"></script><script type="application/json">{}</script></body></html>')
    assert audit_page(page, allowed, content) == []
    planted = page.replace("<h1>ok</h1>", '<h1>x<script>alert(1)</script><img src=x onerror=alert(2)>'
                                          '<a href=" javascript:alert(3)">y</a></h1>')
    problems = audit_page(planted, allowed, content)
    assert len(problems) == 3 and "inline script" in problems[0] and "onerror" in problems[1] and "javascript:" in problems[2]
    assert audit_page(page.replace(content, policy()), allowed, content)  # a different policy is noticed
    late = page.replace('<meta http-equiv="Content-Security-Policy"', '<script src="b.js"></script><meta http-equiv="Content-Security-Policy"')
    assert any("after a script" in p for p in audit_page(late, allowed, content))


def test_theme_hashes_come_from_the_theme_templates_not_the_page() -> None:
    from mkdocs.config import load_config

    config = load_config(str(Path(__file__).resolve().parents[2] / "mkdocs.yml"))
    context = {"config": config, "base_url": "../..", "features": config.theme.get("features") or []}
    hashes = theme_script_hashes(config.theme.get_env(), context)
    assert len(hashes) >= 3  # Material's base, palette and content snippets at least
    assert script_hash("alert(1)") not in hashes
    assert hashes != theme_script_hashes(config.theme.get_env(), {**context, "base_url": "."})  # base_url is in one


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_render_interrupted_half_way_leaves_the_previous_site_whole(site: Path, monkeypatch) -> None:
    gen = site / "generated"
    render_site(gen, site)
    index = json.loads((gen / "index.json").read_text())
    manifest = json.loads((gen / "prompts" / "red-cat.json").read_text())
    manifest["text"] = index["prompts"][0]["text"] = "a smiling, green cat"  # every page and embed of it changes
    manifest.pop("title")
    (gen / "prompts" / "red-cat.json").write_text(json.dumps(manifest))
    (gen / "index.json").write_text(json.dumps(index))
    before = _snapshot(site)

    real, written = publish._staged_copy, []

    def fail_half_way(path: Path, text: str) -> Path:
        if len(written) == 3:
            raise KeyboardInterrupt  # Ctrl-C in the middle of writing the new pages
        written.append(path)
        return real(path, text)

    monkeypatch.setattr(publish, "_staged_copy", fail_half_way)
    with pytest.raises(KeyboardInterrupt):
        render_site(gen, site)
    assert len(written) == 3
    assert _snapshot(site) == before  # no page changed, no temporary file left behind

    monkeypatch.setattr(publish, "_staged_copy", real)
    result = render_site(gen, site)
    assert len(result.changed) > 3
    assert "a smiling, green cat" in (gen / "pages" / "red-cat.md").read_text()
    assert not [p for p in site.rglob("*.tmp")]


def test_a_failed_rename_discards_the_rest(tmp_path: Path, monkeypatch) -> None:
    outputs = {tmp_path / f"{i}.md": f"page {i}" for i in range(4)}
    staged = publish.stage(outputs)
    calls = []

    def replace(src, dst):
        if len(calls) == 2:
            raise OSError("disk gone")
        calls.append(dst)
        os.rename(src, dst)

    monkeypatch.setattr(publish.os, "replace", replace)
    with pytest.raises(OSError):
        publish.commit(staged)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0.md", "1.md"]
