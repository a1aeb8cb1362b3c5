"""Benchmark: does the site stay fast as it grows? Render time, `mkdocs build` time and site size per prompt at
10, 100 and 1,000 prompts (issue 20, item 5).

A synthetic prompt file on the tiny random Stable Diffusion (testing:tiny-sd, 2 steps at 32x32, no DAAM, no
jumps: what is measured here is the site, not the model) is baked once, up to ``--real`` prompts (100: on a
busy 2-core machine a bake of 1,000 takes hours); for each size a fresh copy of the site gets N manifests (past
the baked ones, copies of them under new ids and texts, sharing their assets), is rendered (`render_site`) and
built (`mkdocs build --strict`). Pages, gallery, search index and build time grow with N as for real prompts;
the asset bytes of the copies are not counted twice, so "site KB/prompt" past ``--real`` is pages only plus the
real prompts' assets (the asset bytes of a real prompt are the 100-prompt figure's). Growth is linear or better when the time and size
per prompt do not grow with N.

    nice .venv/bin/python bench/site_scale.py                 # 10, 100, 1000 (bakes 1000 prompts once)
    nice .venv/bin/python bench/site_scale.py --sizes 10 100  # what a busy machine allows
    nice .venv/bin/python bench/site_scale.py --reuse         # render and build again from the last bake
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

SUBJECTS = ["cat", "dog", "owl", "fox", "red circle", "blue square", "lighthouse", "teapot", "bicycle", "forest",
            "robot", "violin", "mountain", "harbour", "lantern", "cactus", "whale", "castle", "kite", "tram"]
STYLES = ["in the rain", "at dawn", "made of glass", "in a painting", "under a bridge", "on the moon", "in fog",
          "as a sketch", "in winter", "at the beach"]


def prompt_file(count: int) -> str:
    """A prompt file of ``count`` distinct prompts (subject x style x seed), cheap settings."""
    lines = ["title: Site scale", "model: testing:tiny-sd",
             "defaults: {steps: 2, width: 32, height: 32, preview_size: 32, daam: false, jumps: false}", "prompts:"]
    for index in range(count):
        lines.append(f"  - {{id: p{index:04d}, text: {prompt_text(index)}, seed: {index}}}")
    return "\n".join(lines) + "\n"


def prompt_text(index: int) -> str:
    """The ``index``-th synthetic prompt."""
    subject, style = SUBJECTS[index % len(SUBJECTS)], STYLES[(index // len(SUBJECTS)) % len(STYLES)]
    return f"a {subject} {style} number {index}"


def scratch_site(root: Path) -> Path:
    """A copy of the hand-written site and mkdocs.yml (generated output left out) under ``root``."""
    shutil.copy2(REPO / "mkdocs.yml", root / "mkdocs.yml")
    shutil.copytree(REPO / "site", root / "site", ignore=shutil.ignore_patterns("generated", "embed"))
    (root / "generator").symlink_to(REPO / "generator", target_is_directory=True)  # hooks and theme override
    (root / "site" / "index.md").write_text("# Site scale\n\n[Gallery](generated/gallery.md)\n")
    return root


def folder_size(folder: Path) -> tuple[int, int]:
    """(bytes, files) under ``folder``."""
    files = [p for p in folder.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files), len(files)


def bake_all(folder: Path, count: int, processes: int, reuse: bool) -> float:
    """Bake the ``count`` prompts once into ``folder`` (``diffatlas bake``, ``processes`` of them); seconds taken.

    With ``reuse``, a folder whose index already lists ``count`` prompts is taken as it is (the bake cache would
    redo everything whenever any file of the baking code changed, which is not what this benchmark measures).
    """
    import json

    folder.mkdir(parents=True, exist_ok=True)
    index = folder / "generated" / "index.json"
    if reuse and index.exists() and len(json.loads(index.read_text())["prompts"]) >= count:
        return 0.0
    (folder / "prompts.yaml").write_text(prompt_file(count))
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "generator", "bake", str(folder / "prompts.yaml"), "--out",
                    str(folder / "generated"), "--device", "cpu", "--processes", str(processes)], check=True, cwd=REPO)
    return time.perf_counter() - started


def measure(baked: Path, root: Path, count: int) -> dict:
    """A fresh site of the first ``count`` baked prompts (their manifests and assets only): render, build, size."""
    import json

    from generator.bake.manifest import manifest_assets
    from generator.render import render_site

    scratch_site(root)
    generated = root / "site" / "generated"
    (generated / "prompts").mkdir(parents=True)
    (generated / "assets").mkdir()
    index = json.loads((baked / "generated" / "index.json").read_text())
    real = index["prompts"]
    index["prompts"] = []
    for number in range(count):  # beyond the baked prompts: copies of their manifests under new ids and texts
        source = real[number % len(real)]
        manifest = json.loads((baked / "generated" / source["manifest"]).read_text())
        for asset in manifest_assets(manifest):
            if not (generated / asset).exists():
                shutil.copy2(baked / "generated" / asset, generated / asset)
        prompt_id = f"p{number:04d}"
        text = prompt_text(number)
        (generated / "prompts" / f"{prompt_id}.json").write_text(json.dumps({**manifest, "id": prompt_id,
                                                                              "text": text}))
        index["prompts"].append({**source, "id": prompt_id, "text": text, "manifest": f"prompts/{prompt_id}.json"})
    (generated / "index.json").write_text(json.dumps(index, sort_keys=True, indent=1) + "\n")
    started = time.perf_counter()
    render_site(generated, root / "site")
    rendered = time.perf_counter() - started
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet"], cwd=root, check=True,
                   env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    built = time.perf_counter() - started
    site = root / "build" / "site"
    size, files = folder_size(site)
    search = site / "search" / "search_index.json"
    pages = [p.stat().st_size for p in (site / "generated" / "pages").glob("*.html")]
    return {"prompts": count, "render_s": rendered, "build_s": built, "site_bytes": size, "files": files,
            "gallery_bytes": (site / "generated" / "gallery.html").stat().st_size,
            "search_bytes": search.stat().st_size if search.exists() else 0,
            "page_bytes": max(pages) if pages else 0}


def table(rows: list[dict]) -> str:
    """The figures, per prompt, and how each grows from the previous size (1.00: linear)."""
    head = (f"{'prompts':>8} {'render s':>9} {'ms/prompt':>10} {'build s':>8} {'ms/prompt':>10} {'site MB':>8} "
            f"{'KB/prompt':>10} {'gallery KB':>11} {'search KB':>10}")
    lines = [head, "-" * len(head)]
    for row in rows:
        n = row["prompts"]
        lines.append(f"{n:>8} {row['render_s']:>9.2f} {1000 * row['render_s'] / n:>10.1f} {row['build_s']:>8.2f} "
                     f"{1000 * row['build_s'] / n:>10.1f} {row['site_bytes'] / 1e6:>8.2f} "
                     f"{row['site_bytes'] / n / 1e3:>10.1f} {row['gallery_bytes'] / 1e3:>11.1f} "
                     f"{row['search_bytes'] / 1e3:>10.1f}")
    for before, after in zip(rows, rows[1:]):
        growth = after["prompts"] / before["prompts"]
        ratios = {key: (after[key] / before[key]) / growth for key in ("render_s", "build_s", "site_bytes")}
        lines.append(f"{before['prompts']} -> {after['prompts']}: time or size per prompt grew x"
                     + ", ".join(f" {k} {v:.2f}" for k, v in ratios.items()) + " (<= ~1: linear or better)")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--baked", type=Path, default=Path(tempfile.gettempdir()) / "diffatlas-site-scale",
                        help="where the prompts are baked once (kept between runs)")
    parser.add_argument("--processes", type=int, default=2, help="bake processes (diffatlas bake --processes)")
    parser.add_argument("--real", type=int, default=100,
                        help="prompts really baked; a larger size repeats their manifests under new ids and texts")
    parser.add_argument("--reuse", action="store_true", help="take an earlier bake of enough prompts as it is")
    options = parser.parse_args()
    sizes = sorted(options.sizes)
    real = min(options.real, sizes[-1])
    seconds = bake_all(options.baked, real, options.processes, options.reuse)
    print(f"baked {real} prompts in {seconds:.0f} s ({options.processes} processes; 0: reused); larger sizes copy "
          "their manifests under new ids and texts (the same assets)", flush=True)
    rows = []
    for count in sizes:
        with tempfile.TemporaryDirectory(prefix="site-scale-") as scratch:
            rows.append(measure(options.baked, Path(scratch), count))
        print(f"{count} prompts: render {rows[-1]['render_s']:.2f} s, build {rows[-1]['build_s']:.2f} s, "
              f"largest prompt page {rows[-1]['page_bytes'] / 1e3:.0f} KB", flush=True)
    print(table(rows))


if __name__ == "__main__":
    main()
