"""Bake stage: the MNIST training chapter of a prompt set, run once and stored as one manifest.

``training/<set id>.json`` under the generated folder holds the chapter of the file's ``training:`` section:
the UNet as read from the model (generator/experiments/course/unet_layers.py, laid out by diagrams.py), test
digits (MNIST test images from ``data``, else class-model samples) and their forward noising, the single-step
denoiser per snapshot epoch and its sigma sweep, the shipped loss histories (for the SVG curves), one sampling
animation per snapshot epoch of the time- and class-conditioned DDPMs (sprite sheets: frame k is the grid of
every sample's x_t at one step), the guidance sweep, the measured quality numbers, and each figure's slide files
(``downloads``: training_slides.py). Models that are not shipped yet are listed under ``missing`` with the
command that trains them. A chapter module (generator/bake/chapters/runner.py): rebaked when its cache key (section,
weight/loss/eval file bytes, jump prompts, baking code) or an asset changes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from generator.bake.cache import cache_key
from generator.bake.chapters import training_slides as slides
from generator.bake.chapters.context import ChapterContext, chapter_id
from generator.bake.chapters.diagrams import unet_geometry
from generator.bake.encoders import pack_grid
from generator.bake.manifest import provenance
from generator.bake.prompt.trajectory import image_entry, sprite_entry
from generator.bake.store import AssetStore
from generator.progress import ProgressCallback, no_progress, progress_counter
from generator.spec.training import TrainingSpec

GAP = 2  # pixels between digits in a grid
STILL_SCALE = 3  # stills are stored upscaled (nearest) so browsers never blur them
SPRITE_SCALE = 1  # animation frames stay at 28 px per digit (noise does not compress); CSS scales them up
TRAIN_COMMANDS = {
    "class": "diffatlas train digits --stage class --hidden 32 --epochs 5 --snapshots 1,3,4,5 --ship-to DIR/class",
    "time": "diffatlas train digits --stage time --hidden 32 --epochs 10 --snapshots 1,3,5,8,10 --ship-to DIR/time",
    "denoiser": "diffatlas train digits --stage denoiser --hidden 32 --epochs 5 --snapshots 1,5 --ship-to DIR/denoiser",
    "flow-class": "diffatlas train digits --stage class --objective flow --hidden 32 --epochs 5 --snapshots 1,2,3,4,5 "
                  "--ship-to DIR/flow-class",
    "flow-time": "diffatlas train digits --stage time --objective flow --hidden 32 --epochs 5 --snapshots 1,2,3,4,5 "
                 "--ship-to DIR/flow-time",
}
# the sampled models' sections: (manifest key and weights folder, stage); flow-* are the flow-matching twins
SAMPLED = (("time", "time"), ("class", "class"), ("flow-time", "time"), ("flow-class", "class"))
LOSS_STAGES = ("denoiser", "time", "class", "flow-time", "flow-class")


def grid_image(images: torch.Tensor, columns: int, scale: int = 1) -> Image.Image:
    """(n, 28, 28) in [0, 1] (clipped) -> one grayscale-as-RGB grid, row-major, ``GAP`` pixels apart."""
    pixels = (images.clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
    tiles = [Image.fromarray(tile, mode="L").convert("RGB") for tile in pixels]
    sheet = pack_grid(tiles, columns, gap=GAP, background=(96, 96, 96))
    return sheet.resize((sheet.width * scale, sheet.height * scale), Image.NEAREST) if scale > 1 else sheet


class _Store:
    def __init__(self, store: AssetStore):
        self.store = store

    def still(self, images: torch.Tensor, columns: int) -> dict:
        """A grid of digits, stored as a still."""
        return {**image_entry(self.store, self.picture(images, columns)), "columns": columns,
                "count": int(images.shape[0])}

    @staticmethod
    def picture(images: torch.Tensor, columns: int) -> Image.Image:
        """A grid of digits as the stills show it (for the slide files)."""
        return grid_image(images, columns, STILL_SCALE)

    def animation(self, frames: torch.Tensor, columns: int) -> dict:
        """The frames of one epoch's sampling as a sprite sheet."""
        """(frames, n, 28, 28) -> a sprite sheet whose frame k is the grid of every sample at frame k."""
        grids = [grid_image(frame, columns) for frame in frames]
        size = (grids[0].width * SPRITE_SCALE, grids[0].height * SPRITE_SCALE)
        return sprite_entry(self.store, grids, size)


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.is_file() else None


def _losses(folder: Path) -> dict | None:
    """The shipped loss history (step and epoch means) of one model, as the chapter's curves need it."""
    data = _read_json(folder / "losses.json")
    if not data:
        return None
    return {k: data[k] for k in ("step_losses", "epoch_losses", "steps_per_epoch", "batch_size") if k in data}


def _model_info(folder: Path) -> dict:
    config = _read_json(folder / "config.json") or {}
    keep = ("stage", "hidden", "epochs", "epochs_completed", "snapshot_epochs", "command", "hardware", "note", "dtype")
    return {k: config[k] for k in keep if k in config}


def _quality(weights: Path) -> dict | None:
    """The shipped eval.json with the commands that reproduce each number, and the measured sampler defaults."""
    from generator.builtin.defaults import read_defaults

    data = _read_json(weights / "eval.json")
    if not data:
        return None
    quality = dict(data)
    commands = {}
    if isinstance(data.get("class"), dict):
        c = data["class"]
        commands["class"] = f"diffatlas eval digits --stage class --n {c.get('n', 500)} --gamma {c.get('gamma', 5.0):g} --seed {data.get('seed', 0)}"
    if isinstance(data.get("time"), dict):
        commands["time"] = f"diffatlas eval digits --stage time --n {data['time'].get('n', 500)} --seed {data.get('seed', 0)}"
    for stage in ("class", "time"):  # the flow-matching twins, measured with their Euler steps
        flow = data.get(f"flow-{stage}")
        if isinstance(flow, dict):
            gamma = f" --gamma {flow.get('gamma', 5.0):g}" if stage == "class" else ""
            commands[f"flow-{stage}"] = (f"diffatlas eval digits --objective flow --stage {stage} --n "
                                         f"{flow.get('n', 500)}{gamma} --flow-steps {flow.get('flow_steps', 20)} "
                                         f"--seed {data.get('seed', 0)}")
    quality.setdefault("commands", commands)
    defaults = {stage: read_defaults(weights / stage) for stage in ("class", "time")}
    quality["sampler_defaults"] = {  # the measured sweep's pick per model (prompt pages of the model use it)
        stage: {**{k: d[k] for k in ("scheduler", "steps", "guidance")}, "score": d["measured"]["score"],
                "n": d["measured"].get("n"), "command": d["measured"]["command"]}
        for stage, d in defaults.items() if d}
    classifier = _read_json(weights / "classifier" / "config.json") or {}
    if "test_accuracy" in classifier:
        quality.setdefault("classifier_test_accuracy", classifier["test_accuracy"])
    return quality


def _bake(prompt_set: Any, store: AssetStore, key: str, progress: ProgressCallback = no_progress) -> dict:
    """Run every part of ``prompt_set.training`` whose model is shipped and return the manifest (assets stored)."""
    from generator.builtin.digits.weights import snapshot_epochs
    from generator.experiments.course import training as ex
    from generator.models.digits import load_digits_adapter

    spec: TrainingSpec = prompt_set.training
    weights = weights_dir(spec)
    s = _Store(store)
    present = {stage: (weights / stage / "config.json").is_file() and any((weights / stage).glob("epoch_*.safetensors"))
               for stage in TRAIN_COMMANDS}
    total = 2 + sum(present.values()) + present["class"]
    tick = progress_counter(progress, total, "training chapter")
    torch.manual_seed(spec.seed)
    class_adapter = load_digits_adapter("class", model_dir=weights / "class") if present["class"] else None
    manifest: dict[str, Any] = {
        "schema": 1,
        "kind": "training",
        "id": chapter_id(prompt_set),
        "title": spec.title,
        "settings": {"steps": spec.steps, "frames": spec.frames, "seed": spec.seed, "scheduler": "ddpm",
                     "sigmas": list(spec.sigmas), "denoiser_sigma": spec.denoiser_sigma,
                     "samples_per_digit": spec.samples_per_digit, "time_samples": spec.time_samples,
                     "guidances": list(spec.guidances), "guidance_samples": spec.guidance_samples},
        "provenance": provenance(section_hash(spec), key),
        "models": {stage: _model_info(weights / stage) for stage, ok in present.items() if ok},
        # the flow-matching twins are an optional section: listed as missing once one of them is shipped
        "missing": {stage: TRAIN_COMMANDS[stage] for stage, ok in present.items()
                    if not ok and (not stage.startswith("flow-") or present["flow-class"] or present["flow-time"])},
        "losses": {stage: loss for stage in LOSS_STAGES if (loss := _losses(weights / stage))},
        "quality": _quality(weights),
        "jumps": [p.id for p in prompt_set.prompts if p.settings.jumps is not None],
    }
    if class_adapter is not None:
        manifest["model"] = {"id": class_adapter.id, "weight_hash": class_adapter.weight_hash}
    drawn = next((stage for stage in ("class", "time", "denoiser") if present[stage]), None)
    if drawn is not None:
        manifest["unet"] = _unet(store, manifest, drawn)
    if manifest["losses"]:
        manifest["losses_downloads"] = slides.losses_download(store, manifest, manifest["losses"])
    digits = ex.pick_test_digits(spec, class_adapter)
    if digits is not None:
        n = len(digits.labels)
        manifest["test_digits"] = {"source": digits.source, "labels": list(digits.labels),
                                   "image": s.still(digits.images, n)}
        if digits.source == "mnist-test":
            manifest["test_digits"]["attribution"] = slides.MNIST_ATTRIBUTION
        levels = ex.noise_levels(digits.images, spec.sigmas, spec.seed)
        manifest["forward"] = {"levels": [{"sigma": level.sigma, "image": s.still(level.noisy, n)} for level in levels],
                               "downloads": slides.forward_download(store, manifest, [
                                   (level.sigma, s.picture(level.noisy, n)) for level in levels])}
    tick("test digits")
    if present["denoiser"] and digits is not None:
        per_epoch, sweep = ex.denoiser_epochs(weights / "denoiser", digits.images, spec)
        n = len(digits.labels)
        manifest["denoiser"] = {
            "sigma": spec.denoiser_sigma,
            "noisy": s.still(per_epoch[0][1].noisy, n),
            "epochs": [{"epoch": e, "image": s.still(level.denoised, n), "mse": level.mse} for e, level in per_epoch],
            "sweep": {"epoch": per_epoch[-1][0], "levels": [
                {"sigma": level.sigma, "noisy": s.still(level.noisy, n), "denoised": s.still(level.denoised, n),
                 "mse": level.mse} for level in sweep]},
            "downloads": slides.denoiser_download(
                store, manifest, spec.denoiser_sigma, s.picture(per_epoch[0][1].noisy, n),
                [(e, s.picture(level.denoised, n), level.mse) for e, level in per_epoch],
                [(level.sigma, s.picture(level.noisy, n), s.picture(level.denoised, n), level.mse) for level in sweep]),
        }
        tick("denoiser")
    for key, stage in SAMPLED:
        if not present[key]:
            continue
        columns = 10 if stage == "class" else min(10, spec.time_samples)
        runs = ex.model_epochs(weights / key, stage, spec)
        manifest[key] = {
            "stage": stage,
            "objective": runs[0].objective,
            "scheduler": runs[0].scheduler,
            "steps": runs[0].steps,
            "columns": columns,
            "samples": int(runs[0].frames.shape[1]),
            "labels": [d for _ in range(spec.samples_per_digit) for d in range(10)] if stage == "class" else None,
            "guidance": 5.0 if stage == "class" else 1.0,
            "epochs": [{"epoch": r.epoch, "frame_steps": list(r.frame_steps), "timesteps": list(r.timesteps),
                        "sprite": s.animation(r.frames, columns),
                        "final": {**s.still(r.final, columns),
                                  "verdict": _grid_verdict(spec, key, stage, r, runs[-1].epoch)}}
                       for r in runs],
        }
        manifest[key]["downloads"] = _epochs_download(store, manifest, key, runs, columns)
        tick(f"{key} epochs")
    if class_adapter is not None:
        sweep = ex.guidance_sweep(class_adapter, spec)
        manifest["guidance"] = {
            "epoch": snapshot_epochs(weights / "class")[-1],
            "labels": [d for _ in range(spec.guidance_samples) for d in range(10)],
            "levels": [{"guidance": gamma, "image": s.still(images, 10)} for gamma, images in sweep],
            "downloads": slides.guidance_download(store, manifest, snapshot_epochs(weights / "class")[-1],
                                                  [(gamma, s.picture(images, 10)) for gamma, images in sweep]),
        }
        tick("guidance sweep")
    tick("done")
    return manifest


def _unet(store: AssetStore, manifest: dict, stage: str) -> dict:
    """The UNet figure of ``stage`` at its shipped width: its blocks read from the model, laid out, and its slide."""
    from generator.experiments.course.unet_layers import unet_layers

    unet = unet_layers(stage, int(manifest["models"][stage]["hidden"])).to_json()
    unet["geometry"] = unet_geometry(unet)
    unet["downloads"] = slides.unet_download(store, manifest, unet)
    return unet


def _epochs_download(store: AssetStore, manifest: dict, stage: str, runs: list, columns: int) -> dict:
    """The slide files of a DDPM's epoch animations: finals, every epoch's sampling side by side, the verdicts."""
    section = manifest[stage]
    finals = [(r.epoch, grid_image(r.final, columns, 2)) for r in runs]
    frames = [[grid_image(frame, columns) for frame in r.frames] for r in runs]  # 28 px digits: noise is costly
    per_digit = "one column per digit 0-9, " if section["stage"] == "class" else ""
    description = (f"{section['samples']} samples ({per_digit}guidance {section['guidance']:g}, {section['scheduler']} "
                   f"with {section['steps']} steps) after each snapshot epoch, from the same noise, so only the model "
                   "changes.")
    verdicts = [f"epoch {e['epoch']}: the digit classifier reads {e['final']['verdict']['share_right']:.0%} of the "
                f"samples as asked" for e in section["epochs"] if "share_right" in e["final"].get("verdict", {})]
    return slides.epochs_download(store, manifest, stage, finals, frames, description, verdicts)


def weights_dir(spec: TrainingSpec) -> Path:
    """The folder holding ``class/``, ``time/``, ``denoiser/`` and ``eval.json``: the section's, or the shipped one."""
    if spec.weights is not None:
        return Path(spec.weights)
    from generator.builtin.digits.weights import shipped_weights_dir

    return shipped_weights_dir()


def section_hash(spec: TrainingSpec) -> str:
    """Hash of the section and of every weight, loss and eval file it reads (the spec part of the cache key)."""
    payload = {k: v for k, v in asdict(spec).items() if k not in ("line", "weights", "data")}
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode())
    folder = weights_dir(spec)
    if folder.is_dir():
        for path in sorted(folder.rglob("*")):
            if path.is_file() and path.suffix in (".safetensors", ".json"):
                digest.update(str(path.relative_to(folder)).encode())
                digest.update(path.read_bytes())
    if spec.data is not None:
        digest.update(b"data:" + spec.data.encode())
        for path in sorted(Path(spec.data).glob("t10k-*")):
            digest.update(path.name.encode() + str(path.stat().st_size).encode())
    return digest.hexdigest()[:16]


def chapter_cache_key(prompt_set: Any, fingerprint: str) -> str:
    """The section with every weight/loss/eval file's bytes, the jump prompts and the baking code.

    The digits models are the section's own weights, so the prompt set's model ``fingerprint`` plays no part.
    """
    jumps = [p.id for p in prompt_set.prompts if p.settings.jumps is not None]
    return cache_key(section_hash(prompt_set.training), jumps)


def bake_chapter(prompt_set: Any, context: ChapterContext) -> dict:
    """Run every part of ``prompt_set.training`` whose model is shipped and return the manifest (assets stored)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a 28x28 UNet on small batches: more threads only contend (5x slower beside training)
    try:
        return _bake(prompt_set, context.store, context.key, context.progress)
    finally:
        torch.set_num_threads(threads)


def baked_note(manifest: dict) -> str:
    """Which models are not shipped yet."""
    return f" (not shipped yet: {', '.join(manifest['missing'])})" if manifest["missing"] else ""


def _grid_verdict(spec: Any, key: str, stage: str, run: Any, last_epoch: int) -> dict:
    """The digit classifier's verdict on one epoch's sample grid of section ``key``, against its stage's target.

    Snapshots before the last epoch are expected to fall short (they are there to watch the model learn); the
    last one must meet its target unless the prompt file's ``training.expect`` names the section with a reason.
    """
    from generator.evaluate.digits_judge import ANY_DIGIT
    from generator.evaluate.digits_report import CLASS_TARGET, TIME_TARGET
    from generator.evaluate.verdicts import grid_verdict
    from generator.spec.prompt_set import Expectation

    count = int(run.final.shape[0])
    asked = [str(index % 10) for index in range(count)] if stage == "class" else [ANY_DIGIT] * count
    reasons = dict(spec.expect)
    expect = None
    if run.epoch != last_epoch:
        expect = Expectation("fail", f"epoch {run.epoch} of {last_epoch}: a snapshot on the way, shown to watch the model learn")
    elif key in reasons:
        expect = Expectation("fail", reasons[key])
    return grid_verdict("digits", run.final, asked,
                        CLASS_TARGET if stage == "class" else TIME_TARGET, expect)
