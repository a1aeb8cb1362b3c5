"""Exporting the latent model from an exported folder's UNet (to ship a new decoder with the shipped UNet)."""

from __future__ import annotations

import json

from safetensors.torch import load_file

from generator.builtin.latent.export import export
from generator.builtin.shipped import shipped_weights


def test_a_folder_exported_from_the_shipped_folder_holds_exactly_its_weights(tmp_path, one_thread):
    shipped = shipped_weights("shapes-latent")
    out = tmp_path / "again"
    training = export(vae_run=shipped, unet_run=shipped, folder=out)
    for part in ("unet", "vae", "text_encoder"):
        name = "model.safetensors" if part == "text_encoder" else "diffusion_pytorch_model.safetensors"
        before, after = load_file(shipped / part / name), load_file(out / part / name)
        assert before.keys() == after.keys()
        assert all((before[k] == after[k]).all() for k in before), part
    assert json.loads((out / "scheduler" / "scheduler_config.json").read_text()) == json.loads(
        (shipped / "scheduler" / "scheduler_config.json").read_text())
    recorded = json.loads((shipped / "training.json").read_text())
    assert training["unet"] == recorded["unet"]  # the UNet's lineage travels with it
