"""Built-in models: export the latent model's runs as a standard diffusers ``StableDiffusionPipeline`` folder.

The folder is what any Stable Diffusion user has (``model_index.json``, ``vae/``, ``unet/``, ``text_encoder/``,
``tokenizer/``, ``scheduler/``, weights in fp16 safetensors), plus two small records of ours that a user's folder
may carry too: ``defaults.json`` (the recommended scheduler, steps and guidance, measured) and ``training.json``
(how each part was trained). The scheduler saved is the recommended one, so ``from_pretrained`` users get it.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import torch

from generator.builtin.latent.loop import STARTED_FROM, run_weights
from generator.builtin.latent.text import text_parts_of
from generator.builtin.latent.unet import UnetConfig, build_scheduler, build_unet, load_vae_run
from generator.builtin.latent.vae import folder_part, is_pipeline_folder
from generator.files import write_json
from generator.models.schedulers import make_scheduler

DEFAULTS = {"scheduler": "ddim", "steps": 25, "guidance": 3.0}  # until `diffatlas eval shapes --sweep` measures them


def _command(run: Path) -> str | None:
    path = run / "command.txt"
    return path.read_text().strip() if path.exists() else None


def build_pipeline(vae_run: Path, unet_run: Path, scheduler_name: str = DEFAULTS["scheduler"]):
    """The pipeline of the two runs' EMA weights (-> diffusers.StableDiffusionPipeline).

    ``unet_run`` may also be an exported folder: its UNet and scheduler are kept as they are (e.g. to ship a
    fine-tuned decoder with the UNet already shipped)."""
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel

    vae, vae_config, _ = load_vae_run(vae_run)
    tokenizer, text_encoder = text_parts_of(text_of(unet_run))
    if is_pipeline_folder(unet_run):
        unet = folder_part(UNet2DConditionModel, unet_run / "unet")
        scheduler_config = json.loads((unet_run / "scheduler" / "scheduler_config.json").read_text())
    else:
        weights, record = run_weights(unet_run, "unet.")
        unet_config = UnetConfig(**{k: tuple(v) if isinstance(v, list) else v
                                    for k, v in record["config"]["model"].items()})
        unet = build_unet(unet_config, vae_config.resolution // vae_config.downsample, vae_config.latent_channels,
                          text_encoder.config.d_model)
        unet.load_state_dict(weights)
        scheduler_config = build_scheduler(unet_config).config
    scheduler = make_scheduler(scheduler_name, scheduler_config)
    return StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet.eval(),
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)


def text_of(unet_run: Path) -> str | None:
    """Where a UNet run's (or an exported folder's) text encoder comes from (``text_parts_of`` reads it)."""
    if is_pipeline_folder(unet_run):
        return str(unet_run)
    config = run_weights(unet_run, "unet.")[1]["config"]
    return config.get("text_encoder") or config.get("init_from")


def _text_lineage(unet_run: Path) -> dict[str, Any] | None:
    """How the UNet run's text encoder was trained (``text_lineage``)."""
    source = text_of(unet_run)
    return None if source is None else text_lineage(source)


def text_lineage(source: str) -> dict[str, Any] | None:
    """How a text encoder was trained, where it was (a ``--stage text`` run, or a folder that records one)."""
    if (Path(source) / "checkpoint.pt").exists():
        return _lineage(Path(source), "text_encoder.")
    training = Path(source) / "training.json"
    return json.loads(training.read_text()).get("text_encoder") if training.exists() else None


def _lineage(run: Path, prefix: str) -> dict[str, Any]:
    """A run's record (steps, time, loss, command) and, for a run that started from another, that one's too; an
    exported folder's part is its own recorded lineage."""
    if is_pipeline_folder(run):
        return json.loads((run / "training.json").read_text())[prefix.rstrip(".")]
    _, record = run_weights(run, prefix)
    entry = {**{k: v for k, v in record.items() if k != "config"}, "command": _command(run)}
    if record["config"].get("grounding"):  # what a reader of the folder needs to know about its attention
        entry["grounding"] = record["config"]["grounding"]
    kept = run / STARTED_FROM  # the exported folder's record as it was when the run started from it
    if kept.exists():
        return {**entry, "started_from": json.loads(kept.read_text())}
    base = record["config"].get("init_from")
    return {**entry, "started_from": _lineage(Path(base), prefix)} if base else entry


def export(vae_run: Path, unet_run: Path, folder: Path, defaults: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write the Stable Diffusion folder of the runs to ``folder`` (fp16 weights) with its records."""
    existing = folder / "defaults.json"
    carried = unet_run / "defaults.json"  # an exported folder's UNet travels with its measured sampler settings
    for source in (existing, carried):
        if defaults is None and source.exists():
            defaults = json.loads(source.read_text())
    defaults = defaults or DEFAULTS
    pipeline = build_pipeline(vae_run, unet_run, defaults["scheduler"])
    half = copy.deepcopy(pipeline).to(torch.float16)
    folder.mkdir(parents=True, exist_ok=True)
    half.save_pretrained(folder, safe_serialization=True)
    training = {"vae": {**_lineage(vae_run, "vae."), "scaling_factor": pipeline.vae.config.scaling_factor},
                "unet": _lineage(unet_run, "unet.")}
    text = _text_lineage(unet_run)
    if text is not None:
        training["text_encoder"] = text
    write_json(folder / "training.json", training)
    write_json(existing, defaults)
    return training
