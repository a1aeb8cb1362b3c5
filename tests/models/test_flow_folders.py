"""SD3 and Flux folders load through the same ``load_model(path)`` as Stable Diffusion, and fail the same way.

A tiny pipeline saved with ``save_pretrained`` is a real diffusers folder (model_index.json, safetensors per
component, both tokenizers): loading it gives the flow adapter with the same weights as the registry id.
"""

from __future__ import annotations

import pytest
import torch

from generator.errors import UserError
from generator.models.flow import FluxAdapter, SD3Adapter
from generator.models.registry import load_model, model_limits


@pytest.mark.parametrize("model_id, adapter_class", [("testing:tiny-sd3", SD3Adapter), ("testing:tiny-flux", FluxAdapter)])
def test_folder_loads_as_flow_adapter(tmp_path, model_id, adapter_class):
    built = load_model(model_id, device="cpu")
    built.pipeline.save_pretrained(tmp_path / "model")
    loaded = load_model(str(tmp_path / "model"), device="cpu", dtype="fp32")
    assert type(loaded) is adapter_class
    assert loaded.weight_hash == built.weight_hash
    assert loaded.prediction_type == "flow" and loaded.default_scheduler == "flow-euler"
    assert loaded.capabilities.guidance == ("distilled" if adapter_class is FluxAdapter else "classifier-free")
    limits = model_limits(str(tmp_path / "model"))
    assert limits.size_multiple == 16 and limits.pixel_space is False
    words = [p.text for p in loaded.tokenize("a red circle") if p.word_index is not None]
    assert len(words) == 3


def test_missing_transformer_weights_is_one_clear_error(tmp_path):
    built = load_model("testing:tiny-sd3", device="cpu")
    folder = tmp_path / "model"
    built.pipeline.save_pretrained(folder)
    for file in (folder / "transformer").glob("*.safetensors"):
        file.unlink()
    with pytest.raises(UserError, match="cannot load model") as error:
        load_model(str(folder), device="cpu")
    assert "\n" not in str(error.value)


def test_absent_model_says_how_to_provide_it(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-cache"))
    monkeypatch.delenv("DIFFATLAS_ALLOW_DOWNLOAD", raising=False)
    with pytest.raises(UserError, match="not on this machine"):
        load_model("stabilityai/stable-diffusion-3.5-medium", device="cpu")
