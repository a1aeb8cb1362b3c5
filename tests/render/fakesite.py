"""A tiny fake bake output (index.json, manifests, real small WebP/PNG/GIF files) for render tests.

Every frame has its own flat colour (see NOISY / PREDICTED) so a test can tell frames apart by
sampling a pixel. Shared by tests/render and tests/browser (the latter loads it by path).
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

from PIL import Image

REPO = Path(__file__).resolve().parents[2]

NOISY = [(230, 30, 30), (30, 200, 30), (30, 30, 230), (230, 230, 30), (230, 30, 230)]
PREDICTED = [(30, 230, 230), (140, 20, 20), (20, 140, 20), (20, 20, 140), (140, 140, 20)]

# id, text, title, steps, columns, frame size, timesteps, with downloads
PROMPTS = [
    ("red-cat", "a smiling, red cat chewing gum", "Red cat", 4, 3, (16, 16), [999, 749, 499, 249], True),
    ("two-dogs", "two *dogs* playing in the [park] <b>&</b>", None, 2, 2, (12, 8), [951.5, 451.25], False),
]


def _save(generated: Path, data: bytes, ext: str) -> str:
    rel = f"assets/{hashlib.sha256(data).hexdigest()[:16]}.{ext}"
    (generated / rel).write_bytes(data)
    return rel


def _encode(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def _sheet(colors: list[tuple[int, int, int]], count: int, columns: int, size: tuple[int, int]) -> Image.Image:
    fw, fh = size
    rows = -(-count // columns)
    sheet = Image.new("RGB", (columns * fw, rows * fh), (0, 0, 0))
    for i in range(count):
        sheet.paste(colors[i], (i % columns * fw, i // columns * fh, i % columns * fw + fw, i // columns * fh + fh))
    return sheet


def manifest_for(generated: Path, pid, text, title, steps, columns, size, timesteps, downloads) -> dict:
    count = steps + 1
    noisy = _save(generated, _encode(_sheet(NOISY, count, columns, size), "WEBP", lossless=True), "webp")
    pred = _save(generated, _encode(_sheet(PREDICTED, count, columns, size), "WEBP", lossless=True), "webp")
    final = _save(generated, _encode(Image.new("RGB", (64, 48), PREDICTED[count - 1]), "PNG"), "png")
    sprite = {"frame_width": size[0], "frame_height": size[1], "columns": columns, "count": count}
    dl = {}
    if downloads:
        frames = [Image.new("RGB", (32, 32), c) for c in NOISY[:count]]
        dl["gif"] = _save(generated, _encode(frames[0], "GIF", save_all=True, append_images=frames[1:]), "gif")
        dl["mp4"] = _save(generated, b"not a real mp4, only served as a download " + pid.encode(), "mp4")
    m = {
        "schema": 1,
        "id": pid,
        "text": text,
        "model": {"id": "testing:tiny-sd", "weight_hash": "abc123", "prediction_type": "epsilon", "pixel_space": False},
        "settings": {"steps": steps, "guidance": 7.5, "seed": 42, "width": 64, "height": 48, "scheduler": "ddim"},
        "provenance": {"spec_hash": "s" * 16, "cache_key": "c" * 16, "versions": {"diffusers": "0.30.0", "torch": "2.4.0"}},
        "final": {"src": final, "width": 64, "height": 48},
        "trajectory": {
            "steps": steps,
            "timesteps": timesteps,
            "noisy": {"src": noisy, **sprite},
            "predicted": {"src": pred, **sprite},
            "downloads": dl,
        },
        "example": {"future": "sections the renderer does not know are ignored"},
    }
    if pid == "red-cat":
        m["daam"] = fake_daam(generated, steps)
    if title:
        m["title"] = title
    return m


DAAM_FRAME = (16, 12)  # width, height of the fake DAAM maps


def daam_ramp(width: int, height: int, kind: int) -> Image.Image:
    """A grayscale map peaking at 255: 0 left-to-right ramp, 1 right-to-left, 2 top-to-bottom, 3 one column."""
    import numpy as np

    x = np.linspace(0, 255, width).round()[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height).round()[:, None].repeat(width, 1)
    if kind == 3:
        values = np.zeros((height, width))
        values[:, 0] = 255
    else:
        values = {0: x, 1: x[:, ::-1], 2: y}[kind]
    return Image.fromarray(values.astype("uint8"), mode="L")


def fake_daam(generated: Path, bins: int) -> dict:
    """A DAAM section for "a smiling, red cat chewing gum" with known maps (see daam_ramp).

    Entry e's aggregate map ("all") is ramp e % 2, its "fine" map ramp 2, its "coarse" map ramp 3;
    its map in time bin b is ramp (b % 2).
    """
    width, height = DAAM_FRAME
    words = ["a", "smiling", ",", "red", "cat", "chewing", "gum"]
    pieces = [("a</w>", 0), ("smiling</w>", 1), (",</w>", 2), ("red</w>", 3), ("cat</w>", 4), ("chew", 5), ("ing</w>", 5), ("gum</w>", 6)]
    entries = [{"label": w, "word": i} for i, w in enumerate(words)]
    entries += [{"label": "<|startoftext|>", "token": 0}, {"label": "<|endoftext|>", "token": len(pieces) + 1}]
    tokens = [{"index": 0, "id": 49406, "text": "<|startoftext|>", "special": "start", "word": None, "map": len(words)}]
    for i, (text, word) in enumerate(pieces, start=1):
        tokens.append({"index": i, "id": 300 + i, "text": text, "special": "", "word": word, "map": word})
    tokens.append({"index": len(pieces) + 1, "id": 49407, "text": "<|endoftext|>", "special": "end", "word": None, "map": len(words) + 1})
    word_list = [
        {"index": i, "text": w, "occurrence": 0, "punctuation": w == ",", "tokens": [t["index"] for t in tokens if t["word"] == i], "map": i}
        for i, w in enumerate(words)
    ]

    def sheet(frames: list[Image.Image], columns: int) -> dict:
        rows = -(-len(frames) // columns)
        image = Image.new("L", (columns * width, rows * height))
        for i, frame in enumerate(frames):
            image.paste(frame, (i % columns * width, i // columns * height))
        src = _save(generated, _encode(image, "PNG"), "png")
        return {"src": src, "frame_width": width, "frame_height": height, "columns": columns, "count": len(frames)}

    aggregate = [daam_ramp(width, height, k) for e in range(len(entries)) for k in (e % 2, 2, 3)]
    over_time = [daam_ramp(width, height, b % 2) for _ in entries for b in range(bins)]
    return {
        "timestep_bins": bins,
        "bin_timesteps": [[999 - 250 * b] for b in range(bins)],
        "tau": 0.4,
        "levels": ["all", "fine", "coarse"],
        "resolutions": {"fine": [[8, 8], [4, 4]], "coarse": [[2, 2]]},
        "entries": entries,
        "tokens": tokens,
        "words": word_list,
        "aggregate": sheet(aggregate, 3),
        "over_time": sheet(over_time, bins),
    }


def write_fake_generated(generated: Path) -> list[dict]:
    """Write a complete fake bake output into `generated`; returns the manifests."""
    (generated / "assets").mkdir(parents=True, exist_ok=True)
    (generated / "prompts").mkdir(parents=True, exist_ok=True)
    manifests, entries = [], []
    for spec in PROMPTS:
        m = manifest_for(generated, *spec)
        (generated / "prompts" / f"{m['id']}.json").write_text(json.dumps(m, sort_keys=True, indent=1))
        thumb = _save(generated, _encode(Image.new("RGB", (32, 24), PREDICTED[m["trajectory"]["steps"]]), "PNG"), "png")
        entries.append({"id": m["id"], "text": m["text"], "manifest": f"prompts/{m['id']}.json", "thumbnail": thumb})
        manifests.append(m)
    index = {"schema": 1, "title": "Fixture prompts", "model": "testing:tiny-sd", "prompts": entries}
    (generated / "index.json").write_text(json.dumps(index, sort_keys=True, indent=1))
    return manifests


def copy_site(dest: Path) -> Path:
    """Copy the repo's hand-written site/ and mkdocs.yml into `dest` (without generated output)."""
    shutil.copy2(REPO / "mkdocs.yml", dest / "mkdocs.yml")
    shutil.copytree(REPO / "site", dest / "site", ignore=shutil.ignore_patterns("generated", "embed"))
    (dest / "generator").symlink_to(REPO / "generator", target_is_directory=True)  # mkdocs.yml's hooks and theme override
    return dest


def mkdocs_build(root: Path) -> Path:
    """`python -m mkdocs build --strict` in `root` (its output in the error if it fails); returns root/build/site."""
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet"],
        cwd=root, capture_output=True, text=True, timeout=180,
    )
    if proc.returncode:
        raise AssertionError(f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}")
    return root / "build" / "site"


def bake_and_build(root: Path, prompts_yaml: str, adapter: object, title: str) -> Path:
    """A real bake of ``prompts_yaml`` with ``adapter`` (e.g. testing:tiny-sd), rendered and built with
    `mkdocs build --strict` under ``root``; the home page only links the gallery. Returns root/build/site."""
    from generator.bake.runner import bake
    from generator.render import render_site
    from generator.spec.prompt_set import load_prompt_set

    copy_site(root)
    (root / "prompts.yaml").write_text(prompts_yaml)
    bake(load_prompt_set(root / "prompts.yaml"), root / "site" / "generated", adapter=adapter)
    render_site(root / "site" / "generated", root / "site")
    (root / "site" / "index.md").write_text(f"# {title}\n\n[Gallery](generated/gallery.md)\n")
    return mkdocs_build(root)


def build_fixture_site(root: Path, prepare: Callable[[Path], object] = lambda generated: None) -> Path:
    """Fake bake (then ``prepare(generated)``, e.g. a chapter or verdicts added) + render + `python -m mkdocs
    build --strict` in `root`; returns root/build/site."""
    from generator.render import render_site

    copy_site(root)
    write_fake_generated(root / "site" / "generated")
    prepare(root / "site" / "generated")
    render_site(root / "site" / "generated", root / "site")
    return mkdocs_build(root)


# The contract's example verdict (generator/manifest/prompt.schema.json $defs/verdict) and its line on the page.
DISAGREES = {
    "judge": "shapes", "asked": "a red circle above a blue square", "agrees": False,
    "claims": [{"kind": "object", "asked": "red circle", "found": "red circle", "correct": True},
               {"kind": "object", "asked": "blue square", "found": "a red square", "correct": False},
               {"kind": "relation", "asked": "above", "found": "below", "correct": False}],
}
DISAGREES_LINE = "asked: a red circle above a blue square · found: red circle ✓, blue square ✗ (a red square), above ✗ (below)"
AGREES = {"judge": "shapes", "asked": "a red circle", "agrees": True,
          "claims": [{"kind": "object", "asked": "red circle", "found": "red circle", "correct": True},
                     {"kind": "count", "asked": "1 object", "found": "1 object", "correct": True}]}
AGREES_LINE = "asked: a red circle · found: red circle ✓, 1 object ✓"
BINDING = "binding: the model draws both colours but swaps which shape wears which"


def judge_fake_site(generated: Path, expect_fail: bool = False, variants: bool = False) -> None:
    """Add verdicts to the fake bake output: red-cat's final image agrees, two-dogs' disagrees (an expected failure
    when ``expect_fail``). With ``variants``, red-cat gets a guidance x seed section of two judged variants (seed 42
    agrees, seed 7 disagrees), whose finals have their own colours."""
    path = generated / "prompts" / "red-cat.json"
    manifest = json.loads(path.read_text())
    manifest["final"]["verdict"] = AGREES
    if variants:
        traj = manifest["trajectory"]
        other = _save(generated, _encode(Image.new("RGB", (64, 48), (250, 0, 250)), "PNG"), "png")
        items = [{"seed": seed, "guidance": 7.5, "noisy": traj["noisy"], "predicted": traj["predicted"],
                  "final": {"src": src, "width": 64, "height": 48, "verdict": verdict}}
                 for seed, src, verdict in ((42, manifest["final"]["src"], AGREES), (7, other, DISAGREES))]
        manifest["variants"] = {"seeds": [42, 7], "guidances": [7.5], "items": items}
    path.write_text(json.dumps(manifest, sort_keys=True, indent=1))
    path = generated / "prompts" / "two-dogs.json"
    manifest = json.loads(path.read_text())
    manifest["final"]["verdict"] = {**DISAGREES, **({"expect": {"outcome": "fail", "reason": BINDING}} if expect_fail else {})}
    path.write_text(json.dumps(manifest, sort_keys=True, indent=1))


ALONGSIDE_VERDICT = {"judge": "shapes", "asked": "a smiling, red cat chewing gum", "agrees": False,
           "claims": [{"kind": "colour", "asked": "red cat", "found": "a blue blob", "correct": False}]}


def put_alongside(generated: Path, text: str | None = None, model: str = "embedded:shapes-latent") -> dict:
    """Turn the fixture's second prompt into the first one ("red-cat") on another model (`alongside: red-cat`)."""
    path = generated / "prompts" / "two-dogs.json"
    manifest = json.loads(path.read_text())
    manifest["alongside"] = "red-cat"
    manifest["text"] = text or json.loads((generated / "prompts" / "red-cat.json").read_text())["text"]
    manifest["model"] = {**manifest["model"], "id": model, "pixel_space": True}
    manifest["final"]["verdict"] = ALONGSIDE_VERDICT
    path.write_text(json.dumps(manifest))
    index = json.loads((generated / "index.json").read_text())
    for entry in index["prompts"]:
        if entry["id"] == "two-dogs":
            entry["text"] = manifest["text"]
    (generated / "index.json").write_text(json.dumps(index))
    return manifest


def page_text(site: Path, pid: str) -> str:
    """The rendered Markdown of prompt ``pid``'s page in the fixture site."""
    return (site / "generated" / "pages" / f"{pid}.md").read_text()


def between(text: str, start: str, end: str) -> str:
    """``text`` from the first ``start`` up to the next ``end`` after it (a page's one section or figure)."""
    return text[text.index(start):text.index(end, text.index(start))]
