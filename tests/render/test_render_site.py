"""Render stage: fake manifests -> gallery, prompt pages, embed pages; errors; stale pages; no torch."""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fakesite import build_fixture_site

from generator.render import RenderError, render_site, schema_errors

REPO = Path(__file__).resolve().parents[2]
URL_ATTR = re.compile(r"""(?:src|href|data-src|data-embed-src)="([^"#]+)[^"]*"|url\('([^']+)'\)|\]\(([^)\s]+)\)""")


def _manifest(site: Path, pid: str) -> dict:
    return json.loads((site / "generated" / "prompts" / f"{pid}.json").read_text())


def _write_manifest(site: Path, pid: str, data: dict) -> None:
    (site / "generated" / "prompts" / f"{pid}.json").write_text(json.dumps(data))


def _local_urls(text: str) -> list[str]:
    urls = [next(g for g in m.groups() if g) for m in URL_ATTR.finditer(text)]
    return [u for u in urls if not u.startswith(("http://", "https://", "mailto:", "data:"))]


def _resolves(url: str, base: Path) -> bool:
    """A relative URL from a page in `base` exists on disk (.html pages exist as their .md sources)."""
    target = (base / url).resolve()
    return target.is_file() or (target.suffix == ".html" and target.with_suffix(".md").is_file())


def test_fixture_manifests_are_valid_and_the_validator_agrees_with_jsonschema(site, schema_validator):
    for pid in ("red-cat", "two-dogs"):
        m = _manifest(site, pid)
        assert list(schema_validator.iter_errors(m)) == []
        assert schema_errors(m) == []
        broken = [
            {**m, "schema": 2},
            {k: v for k, v in m.items() if k != "settings"},
            {**m, "id": "Bad/Id"},
            {**m, "settings": {**m["settings"], "steps": "four"}},
            {**m, "settings": {**m["settings"], "guidance": -1}},
            {**m, "final": {**m["final"], "src": "assets/nothex.png"}},
            {**m, "model": {**m["model"], "prediction_type": "velocity"}},
            {**m, "trajectory": {**m["trajectory"], "noisy": {**m["trajectory"]["noisy"], "columns": 0}}},
            {**m, "trajectory": {**m["trajectory"], "timesteps": ["999"]}},
            {**m, "settings": {**m["settings"], "seed": True}},
        ]
        for bad in broken:
            assert list(schema_validator.iter_errors(bad)), bad
            assert schema_errors(bad), bad


def test_render_writes_gallery_pages_and_embeds_with_working_relative_paths(site):
    result = render_site(site / "generated", site)
    gen = site / "generated"
    assert result.gallery == gen / "gallery.md"
    assert result.pages == (gen / "pages" / "red-cat.md", gen / "pages" / "two-dogs.md")
    embeds = ("red-cat-daam.html", "red-cat-trajectory.html", "two-dogs-trajectory.html")  # red-cat has a DAAM section
    assert result.embeds == tuple(site / "embed" / name for name in embeds)
    # and the course-experiments, training, faithfulness and DAAM-findings chapters and the judged-figures page (with its
    # quality.json), written even when not baked so their nav entries resolve
    assert set(result.changed) == {result.gallery, *result.pages, *result.embeds, gen / "course.md", gen / "training.md",
                                   gen / "faithfulness.md", gen / "daam-findings.md", gen / "quality.md", gen / "quality.json"}

    gallery = result.gallery.read_text()
    assert 'href="pages/red-cat.html"' in gallery and 'href="pages/two-dogs.html"' in gallery
    assert gallery.index("red-cat") < gallery.index("two-dogs")  # index order

    page = (gen / "pages" / "red-cat.md").read_text()
    m = _manifest(site, "red-cat")
    traj = m["trajectory"]
    assert page.startswith('---\ntitle: "Red cat"\n---')
    assert "# Red cat" in page and "a smiling, red cat chewing gum" in page
    assert f'data-src="../assets/{Path(traj["noisy"]["src"]).name}"' in page
    assert f'data-src="../assets/{Path(traj["predicted"]["src"]).name}"' in page
    assert f'<img class="atlas-final" src="../assets/{Path(m["final"]["src"]).name}" alt="Final image of “' in page
    assert f'](../assets/{Path(traj["downloads"]["gif"]).name}){{ download }}' in page
    assert f'](../assets/{Path(traj["downloads"]["mp4"]).name}){{ download }}' in page
    assert 'data-steps="4"' in page and 'data-timesteps="999,749,499,249"' in page
    assert 'data-group="traj-red-cat"' in page
    assert 'data-embed-src="../../embed/red-cat-trajectory.html"' in page
    assert "<code>2.4.0</code>" in page and "<code>abc123</code>" in page  # provenance
    # Sheets are measured: 5 frames in 3 columns of 16x16 -> a 3x2 grid.
    assert 'data-sheet-columns="3" data-sheet-rows="2"' in page and "background-size: 300% 200%" in page
    assert "token usually soaks up" in page  # this model's tokens begin with a start token; a T5's do not

    embed = (site / "embed" / "red-cat-trajectory.html").read_text()
    assert embed.startswith("<!doctype html>")
    assert 'href="../assets/css/atlas.css"' in embed and 'src="../assets/js/trajectory.js"' in embed
    assert f'data-src="../generated/assets/{Path(traj["noisy"]["src"]).name}"' in embed
    assert 'href="../generated/pages/red-cat.html"' in embed
    assert "md-header" not in embed and "http://" not in embed and "https://" not in embed

    for path in (result.gallery, *result.pages):
        for url in _local_urls(path.read_text()):
            assert _resolves(url, path.parent), f"{path.name}: {url}"
    for path in result.embeds:
        for url in _local_urls(path.read_text()):
            assert _resolves(url, path.parent), f"{path.name}: {url}"
    scripts = re.findall(r'<script src="([^"]+)"', embed)
    assert scripts[0] == "../assets/js/atlas-core.js" and "../assets/js/embed.js" in scripts


def test_prompt_text_is_escaped_for_markdown_and_html(site):
    render_site(site / "generated", site)
    page = (site / "generated" / "pages" / "two-dogs.md").read_text()
    assert r"# two \*dogs\* playing in the \[park\] &lt;b&gt;&amp;&lt;/b&gt;" in page
    assert "<b>" not in page.split("---", 2)[2]  # only in the (YAML-quoted) front matter title
    assert 'data-timesteps="951.5,451.2"' in page or 'data-timesteps="951.5,451.3"' in page


def test_rerender_is_a_no_op_and_stale_pages_are_removed(site):
    gen = site / "generated"
    render_site(gen, site)
    assert render_site(gen, site).changed == ()
    index = json.loads((gen / "index.json").read_text())
    index["prompts"] = index["prompts"][:1]
    (gen / "index.json").write_text(json.dumps(index))
    result = render_site(gen, site)
    assert set(result.removed) == {gen / "pages" / "two-dogs.md", site / "embed" / "two-dogs-trajectory.html"}
    assert not (gen / "pages" / "two-dogs.md").exists()
    assert sorted(p.name for p in (gen / "pages").iterdir()) == ["red-cat.md"]
    assert "two-dogs" not in result.gallery.read_text()


def _mutations(m: dict):
    steps_mismatch = copy.deepcopy(m)
    steps_mismatch["trajectory"]["timesteps"] = steps_mismatch["trajectory"]["timesteps"][:-1]
    count_mismatch = copy.deepcopy(m)
    count_mismatch["trajectory"]["predicted"]["count"] = m["trajectory"]["steps"]
    geometry = copy.deepcopy(m)
    geometry["trajectory"]["noisy"]["frame_width"] = 7
    unknown_model = copy.deepcopy(m)
    del unknown_model["model"]["weight_hash"]
    return [
        ("model: 'weight_hash' is a required property", unknown_model),
        ("timesteps has 3 entries, expected steps = 4", steps_mismatch),
        ("predicted.count is 4, expected steps + 1 = 5", count_mismatch),
        ("does not hold 5 frames of 7x16", geometry),
    ]


@pytest.mark.parametrize("case", range(4))
def test_bad_manifest_fails_loudly_and_writes_nothing(site, case):
    message, bad = _mutations(_manifest(site, "red-cat"))[case]
    _write_manifest(site, "red-cat", bad)
    with pytest.raises(RenderError) as err:
        render_site(site / "generated", site)
    assert "red-cat.json" in str(err.value) and message in str(err.value)
    assert not (site / "generated" / "gallery.md").exists() and not (site / "embed").exists()


def test_missing_asset_fails_loudly(site):
    render_site(site / "generated", site)
    src = _manifest(site, "two-dogs")["trajectory"]["predicted"]["src"]
    (site / "generated" / src).unlink()
    with pytest.raises(RenderError, match=re.escape(f"asset {src} is missing")):
        render_site(site / "generated", site)


def test_missing_index_and_bad_json_fail_loudly(tmp_path, site):
    with pytest.raises(RenderError, match="index not found"):
        render_site(tmp_path / "nowhere", tmp_path)
    (site / "generated" / "prompts" / "red-cat.json").write_text("{not json")
    with pytest.raises(RenderError, match="red-cat.json: cannot read manifest"):
        render_site(site / "generated", site)


def test_render_path_never_imports_torch(site):
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('torch', 'diffusers', 'transformers'):\n"
        "            raise ImportError('render must not import ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from pathlib import Path\n"
        "from generator.render import render_site\n"
        f"render_site(Path({str(site / 'generated')!r}), Path({str(site)!r}))\n"
        "assert 'torch' not in sys.modules\n"
        "print('ok')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_mkdocs_build_strict_on_the_fixture_site(tmp_path):
    built = build_fixture_site(tmp_path)  # copies site/ + mkdocs.yml, renders, python -m mkdocs build --strict
    for rel in ("index.html", "generated/gallery.html", "generated/pages/red-cat.html",
                "generated/pages/two-dogs.html", "embed/red-cat-trajectory.html", "assets/js/atlas-core.js",
                "generated/faithfulness.html"):
        assert (built / rel).is_file(), rel
    page = (built / "generated" / "pages" / "red-cat.html").read_text()
    assert 'data-atlas="trajectory"' in page and "assets/js/trajectory.js" in page
    for html in built.rglob("*.html"):
        text = html.read_text()
        external = re.findall(r"""<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)="(https?:)?//""", text)
        assert not external, f"{html.relative_to(built)} loads a third-party resource"
        if html.name == "404.html":
            continue  # Material's 404 page uses root-absolute URLs by design (served from any path)
        for url in _local_urls(text):
            if "://" not in url and not url.startswith("#"):
                assert (html.parent / url.split("?")[0]).resolve().exists(), f"{html.relative_to(built)}: {url}"


def test_manifest_sections_render_through_their_templates(site, tmp_path, monkeypatch):
    """The extension point: manifest key `example` + templates/sections/example.*.j2 -> page section + embed."""
    import generator.render.site as render_site_module

    templates = tmp_path / "templates"
    shutil.copytree(render_site_module.TEMPLATES, templates)
    (templates / "sections").mkdir(exist_ok=True)
    (templates / "sections" / "example.md.j2").write_text(
        '## Where words land\n\n<div class="example" data-group="{{ traj.group }}" data-src="{{ asset(p.thumbnail.src) }}">'
        "{{ section.future }}</div>\n"
    )
    (templates / "sections" / "example.embed.html.j2").write_text('<div class="example" data-src="{{ asset(p.final.src) }}"></div>')
    monkeypatch.setattr(render_site_module, "TEMPLATES", templates)

    result = render_site(site / "generated", site)
    page = (site / "generated" / "pages" / "red-cat.md").read_text()
    thumb = json.loads((site / "generated" / "index.json").read_text())["prompts"][0]["thumbnail"]
    assert '<div class="example" data-group="traj-red-cat" data-src="../' + thumb + '">sections the renderer' in page
    assert page.index('data-atlas="trajectory"') < page.index("## Where words land") < page.index("## Final image")
    embed = site / "embed" / "red-cat-example.html"
    assert embed in result.embeds and 'data-src="../generated/assets/' in embed.read_text()
    assert "<title>Red cat · example · Fixture prompts</title>" in embed.read_text()

    m = _manifest(site, "two-dogs")
    m["example"] = {"future": "x"}
    _write_manifest(site, "two-dogs", m)
    (templates / "sections" / "example.embed.html.j2").write_text('{{ asset("assets/0000000000000000.webp") }}')
    with pytest.raises(RenderError, match=r"red-cat.json example: asset assets/0000000000000000.webp is missing"):
        render_site(site / "generated", site)


def test_the_start_token_remark_is_only_there_when_the_model_has_one(site):
    path = site / "generated" / "prompts" / "red-cat.json"
    manifest = json.loads(path.read_text())
    manifest["daam"]["tokens"] = [t for t in manifest["daam"]["tokens"] if t["special"] != "start"]
    path.write_text(json.dumps(manifest))
    render_site(site / "generated", site)
    page = (site / "generated" / "pages" / "red-cat.md").read_text()
    assert "atlas-daam-token" in page and "⟨start⟩" not in page
