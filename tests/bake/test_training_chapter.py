"""The MNIST training chapter: its prompt-file section, bake (manifest counts) and render (SVG loss curves)."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import pytest
import training_chapter_fixture as fixture
from PIL import Image
from render.plotdata import plots, series
from spec.spec_errors import assert_one_line_error, write_prompt_file

from generator.spec.prompt_set import load_prompt_set


@pytest.fixture(scope="module")
def baked(tmp_path_factory) -> Path:
    return fixture.bake_fixture(tmp_path_factory.mktemp("training-chapter"))


@pytest.fixture(scope="module")
def manifest(baked: Path) -> dict:
    return json.loads((baked / "training" / "digits.json").read_text())


def test_manifest_has_every_epoch_frame_and_sample(baked: Path, manifest: dict) -> None:
    assert manifest["kind"] == "training" and manifest["missing"] == {}
    settings = manifest["settings"]
    for stage, samples in (("class", 40), ("time", 6)):
        section = manifest[stage]
        assert [e["epoch"] for e in section["epochs"]] == list(fixture.SNAPSHOTS[stage])
        assert section["samples"] == samples
        for entry in section["epochs"]:
            assert entry["frame_steps"] == [0, 2, 4]  # 3 frames over 4 steps, both ends
            sprite = entry["sprite"]
            assert sprite["count"] == settings["frames"] == 3
            columns = section["columns"]
            rows = -(-samples // columns)
            assert (sprite["frame_width"], sprite["frame_height"]) == (columns * 30 - 2, rows * 30 - 2)
            with Image.open(baked / sprite["src"]) as sheet:  # the sheet really holds every frame
                assert sheet.width >= sprite["frame_width"] * min(3, sprite["columns"])
                assert sheet.height >= sprite["frame_height"] * math.ceil(3 / sprite["columns"])
            assert entry["final"]["count"] == samples
    assert manifest["class"]["labels"] == [d for _ in range(4) for d in range(10)]
    assert [level["sigma"] for level in manifest["forward"]["levels"]] == [0.0, 0.2, 0.4, 0.5, 0.6, 0.8, 1.0]
    assert [e["epoch"] for e in manifest["denoiser"]["epochs"]] == [1, 5]
    assert [level["sigma"] for level in manifest["denoiser"]["sweep"]["levels"]] == settings["sigmas"]
    assert manifest["denoiser"]["sweep"]["levels"][0]["mse"] >= 0
    assert [level["guidance"] for level in manifest["guidance"]["levels"]] == [0.0, 5.0, 10.0]
    assert all(level["image"]["count"] == 10 for level in manifest["guidance"]["levels"])
    assert manifest["guidance"]["epoch"] == 3
    assert manifest["test_digits"]["source"] == "class-samples" and manifest["test_digits"]["labels"] == [0, 1, 2]
    assert manifest["quality"]["class"]["label_accuracy"] == 0.9712
    assert "--stage class --n 500 --gamma 5" in manifest["quality"]["commands"]["class"]
    shipped = json.loads((baked.parent / "weights" / "class" / "losses.json").read_text())
    assert manifest["losses"]["class"]["step_losses"] == pytest.approx(shipped["step_losses"], abs=1e-5)  # 5-digit JSON


def test_second_bake_is_cached_and_missing_models_are_listed(baked: Path, tmp_path: Path) -> None:
    from generator.bake.runner import bake

    events: list[str] = []
    bake(load_prompt_set(baked.parent / "digits.yaml"), baked, on_event=events.append)
    assert any("training digits: unchanged, cached" in e for e in events), events
    root = tmp_path / "partial"
    shutil.copytree(baked.parent / "weights", root / "weights")
    shutil.rmtree(root / "weights" / "time")
    (root / "digits.yaml").write_text(fixture.PROMPT_FILE.replace("steps: 4", "steps: 2").replace("frames: 3", "frames: 2"))
    bake(load_prompt_set(root / "digits.yaml"), root / "generated")
    partial = json.loads((root / "generated" / "training" / "digits.json").read_text())
    assert "time" not in partial and "--stage time" in partial["missing"]["time"]
    assert [e["sprite"]["count"] for e in partial["class"]["epochs"]] == [2, 2]


@pytest.mark.parametrize(
    ("section", "line", "message"),
    [
        ("  steps: 0\n", 3, "steps must be >= 2"),
        ("  colour: red\n", 3, "unknown key 'colour' in training"),
        ("  weights: nowhere\n", 3, "weights folder 'nowhere' does not exist"),
        ("  data: .\n", 3, "t10k-images-idx3-ubyte"),
        ("  steps: 4\n  frames: 9\n", 4, "frames (9) must be at most steps + 1 (5)"),
        ("  sigmas: [0.5, -1]\n", 3, "sigmas must be >= 0"),
    ],
)
def test_training_section_errors_name_file_and_line(tmp_path: Path, section: str, line: int, message: str) -> None:
    assert_one_line_error(write_prompt_file(tmp_path, "model: embedded:digits\ntraining:\n" + section, "bad.yaml"),
                          line, message)


def test_rendered_loss_curves_match_the_shipped_json(baked: Path) -> None:
    """The denoiser's chart and one chart of the time and class DDPMs; every point is a (step, loss) of the JSON."""
    page = _rendered(baked)
    assert "Nothing baked yet" not in page
    site = baked.parent / "site"
    assert (site / "embed" / "training-digits-epochs-class.html").is_file()
    assert (site / "embed" / "training-digits-losses.html").is_file()
    charts = plots(page, "loss")
    assert sorted(c["attrs"]["stages"] for c in charts) == ["denoiser", "time class"]
    names = {"denoiser": "single-step denoiser", "time": "time-conditioned DDPM", "class": "class-conditioned DDPM"}
    for chart in charts:
        spec = chart["spec"]
        assert spec["y"]["log"] and spec["x"]["min"] == 0
        stages = chart["attrs"]["stages"].split()
        for stage in stages:
            shipped = json.loads((baked.parent / "weights" / stage / "losses.json").read_text())
            per_epoch = fixture.STEPS_PER_EPOCH[stage]
            assert per_epoch == shipped["steps_per_epoch"]
            steps = shipped["step_losses"]
            size = math.ceil(len(steps) / 400)
            (line,) = [s for s in spec["series"] if s["label"].startswith(f"{names[stage]}, per step")]
            expected = [sum(steps[i:i + size]) / len(steps[i:i + size]) for i in range(0, len(steps), size)]
            assert line["kind"] == "line" and line["y"] == pytest.approx(expected, abs=6e-6)  # the bake: 5 decimals
            middles = [i + (min(size, len(steps) - i) - 1) / 2 for i in range(0, len(steps), size)]
            assert [x * per_epoch for x in line["x"]] == pytest.approx(middles, abs=1e-3)
            dots = series(chart, f"{names[stage]}, epoch mean")
            assert dots["kind"] == "points" and dots["y"] == pytest.approx(shipped["epoch_losses"], abs=6e-6)
            assert dots["x"] == pytest.approx([min(e + 0.5, spec["x"]["max"]) for e in range(len(dots["y"]))])
            assert [r[2] for r in chart["table"][1:] if r[0] == names[stage]] == [f"{v:.5g}" for v in dots["y"]]
        # the x axis spans the longest run in epochs: the time model's 4 here, the class model's 3 on the same chart
        assert spec["x"]["max"] == pytest.approx(max(len(json.loads((baked.parent / "weights" / s / "losses.json")
                                                                  .read_text())["step_losses"])
                                                     / fixture.STEPS_PER_EPOCH[s] for s in stages), abs=1e-4)
    assert "97.1%" in page and "diffatlas eval digits --stage class --n 500" in page


def _rendered(baked: Path) -> str:
    """Render the baked fixture once (into baked/../site) and return the training page."""
    from generator.render.site import render_site

    page = baked / "training.md"
    if not page.is_file():
        site = baked.parent / "site"
        (site / "assets").mkdir(parents=True, exist_ok=True)
        render_site(baked, site)
    return page.read_text()


def test_data_folder_gives_real_test_digits_in_label_order(tmp_path: Path) -> None:
    """With `data:` the chapter noises the first test image of each digit (synthetic IDX files here)."""
    import numpy as np

    from generator.builtin.digits.mnist import write_idx_images, write_idx_labels
    from generator.experiments.course.training import pick_test_digits

    data = tmp_path / "mnist"
    data.mkdir()
    labels = np.array([3, 1, 0, 1, 2, 0, 3], dtype=np.uint8)
    images = np.stack([np.full((28, 28), 10 * i, dtype=np.uint8) for i in range(len(labels))])
    write_idx_images(data / "t10k-images-idx3-ubyte.gz", images)
    write_idx_labels(data / "t10k-labels-idx1-ubyte.gz", labels)
    path = tmp_path / "digits.yaml"
    path.write_text("model: embedded:digits\ntraining:\n  data: mnist\n  test_digits: 4\n")
    spec = load_prompt_set(path).training
    digits = pick_test_digits(spec, None)
    assert digits.source == "mnist-test" and digits.labels == (0, 1, 2, 3)
    # first occurrences: 0 at index 2, 1 at 1, 2 at 4, 3 at 0
    assert [round(float(im[0, 0]) * 255) for im in digits.images] == [20, 10, 40, 0]


def test_shipped_prompt_file_asks_for_the_issue_settings() -> None:
    """prompts/digits.yaml: the issue's sigmas, 4 samples per digit, guidance {0, 5, 10}, beta-sum jump prompts."""
    prompt_set = load_prompt_set(Path(__file__).resolve().parents[2] / "prompts" / "digits.yaml")
    spec = prompt_set.training
    assert prompt_set.model == "embedded:digits" and spec.weights is None
    assert Path(spec.data) == Path(__file__).resolve().parents[2] / "prompts" / "inputs" / "mnist-test-digits"
    assert spec.sigmas == (0.0, 0.2, 0.4, 0.5, 0.6, 0.8, 1.0) and spec.denoiser_sigma == 0.5
    assert spec.samples_per_digit == 4 and spec.guidances == (0.0, 5.0, 10.0)
    assert prompt_set.prompts and all(p.settings.jumps.method == "beta-sum" for p in prompt_set.prompts)


def test_the_measured_sampler_defaults_reach_the_quality_section(tmp_path: Path) -> None:
    from generator.bake.chapters.training import _quality
    from generator.builtin.defaults import write_defaults

    (tmp_path / "class").mkdir()
    (tmp_path / "eval.json").write_text(json.dumps({"seed": 0}))
    rows = [{"scheduler": "ddpm", "steps": 25, "guidance": 5.0, "score": 1.0, "rates": {}}]
    write_defaults(tmp_path / "class", {"rows": rows, "chosen": {**rows[0]}}, "diffatlas eval digits --sweep", {"n": 50})
    quality = _quality(tmp_path)
    assert quality["sampler_defaults"] == {"class": {"scheduler": "ddpm", "steps": 25, "guidance": 5.0, "score": 1.0,
                                                     "n": 50, "command": "diffatlas eval digits --sweep"}}


def test_without_mnist_files_the_chapter_noises_samples_and_says_so(baked: Path, manifest: dict) -> None:
    """The fixture names no data folder: the digits are class-model samples, and the page says so above them."""
    assert manifest["test_digits"]["source"] == "class-samples" and "attribution" not in manifest["test_digits"]
    page = _rendered(baked)
    fallback = re.search(r'<p [^>]*data-role="digits-fallback"[^>]*>(.*?)</p>', page)
    assert fallback and "baked without MNIST files" in fallback.group(1) and "samples of the class-conditioned" in page
    assert page.index('data-role="digits-fallback"') < page.index('id="training-digits-denoiser"')
    assert "CC BY-SA" not in page  # no MNIST image is shown, so none is credited


FIGURE_TITLES = {"forward": "Forward noising", "denoiser": "A single-step denoiser",
                 "unet": "The class-conditioned UNet", "losses": "Loss curves",
                 "epochs-time": "The time-conditioned DDPM, epoch by epoch",
                 "epochs-class": "The class-conditioned DDPM, epoch by epoch", "guidance": "Classifier-free guidance"}


def test_every_figure_has_its_slide_files_and_a_caption_that_names_it(baked: Path, manifest: dict) -> None:
    entries = {"forward": manifest["forward"], "denoiser": manifest["denoiser"], "unet": manifest["unet"],
               "losses": {"downloads": manifest["losses_downloads"]}, "epochs-time": manifest["time"],
               "epochs-class": manifest["class"], "guidance": manifest["guidance"]}
    page = _rendered(baked)
    for figure, entry in entries.items():
        files = entry["downloads"]
        assert files["name"] == f"training-digits-{figure}"
        caption = (baked / files["caption"]["src"]).read_text()
        assert caption.splitlines()[0].startswith(FIGURE_TITLES[figure]), (figure, caption)
        assert "diffusion-atlas chapter \"Training fixture\"" in caption
        with Image.open(baked / files["png"]["src"]) as png:
            assert png.format == "PNG" and png.size == (files["png"]["width"], files["png"]["height"])
        for kind in ("png", "txt"):
            src = files["png" if kind == "png" else "caption"]["src"]
            assert f'href="{src}" download="training-digits-{figure}.{kind}"' in page
        animated = figure.startswith("epochs-")
        assert ("gif" in files and "mp4" in files) == animated
        if animated:
            with Image.open(baked / files["gif"]["src"]) as gif:
                assert gif.n_frames == manifest["settings"]["frames"]
            assert (baked / files["mp4"]["src"]).read_bytes()[4:8] == b"ftyp"
    unet_caption = (baked / manifest["unet"]["downloads"]["caption"]["src"]).read_text()
    assert "up1 (UpBlock): 16x7x7 -> 4x14x14, input concatenated with down2" in unet_caption  # D = 4


def test_the_page_draws_the_unet_of_the_shipped_width(baked: Path, manifest: dict) -> None:
    """The fixture's models are 4 wide: the figure and its table show the shapes of a D = 4 UNet."""
    page = _rendered(baked)
    unet = manifest["unet"]
    assert (unet["stage"], unet["hidden"]) == ("class", 4)
    svg = re.search(r'<svg class="atlas-unet".*?</svg>', page, re.S).group(0)
    for block, shape in (("in_block", "4×28×28"), ("down2", "8×7×7"), ("flatten", "8×1×1"), ("up1", "4×14×14"),
                         ("out_conv", "1×28×28")):
        assert re.search(rf'data-block="{block}".*?{shape}', svg, re.S), block
        assert re.search(rf'<tr data-block="{block}">.*?<td>{shape}</td>', page), block
    assert '<tr data-block="up1"><th scope="row"><code>up1</code></th><td>UpBlock</td><td>16×7×7 (concat of' in page
