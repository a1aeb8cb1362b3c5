"""Memory options (issue 20): CPU offload, VAE slicing and tiling reach diffusers' own mechanisms; tiled and sliced
decodes equal the plain decode within tolerance; --dtype names and refusals; every refusal is one line."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from typer.testing import CliRunner

from generator.errors import UserError
from generator.models import MemoryOptions, load_model
from generator.models.common import resolve_dtype
from generator.models.memory import apply_memory_options, check_memory_options

PROMPTS = """
model: MODEL
defaults: {steps: 2, guidance: 7.5, width: 64, height: 64, scheduler: ddim, preview_size: 32, jumps: false, daam: false}
prompts:
  - id: cat
    text: a red cat
"""


@pytest.fixture(scope="module")
def own_tiny_sd():
    """A tiny SD adapter of this module's own (its VAE's settings change here; the session's stays untouched)."""
    torch.set_num_threads(1)
    return load_model("testing:tiny-sd", device="cpu", dtype="fp32")


def latents(adapter, count: int, side: int) -> torch.Tensor:
    """Fixed random latents of ``count`` images of ``side`` pixels."""
    channels, height, width = adapter.latent_shape(side, side)
    return torch.randn(count, channels, height, width, generator=torch.Generator().manual_seed(0))


def test_vae_options_reach_the_vae_of_the_loaded_pipeline():
    plain = load_model("testing:tiny-sd", device="cpu", dtype="fp32")
    assert not plain.pipeline.vae.use_slicing and not plain.pipeline.vae.use_tiling
    both = load_model("testing:tiny-sd", device="cpu", dtype="fp32",
                      memory=MemoryOptions(vae_slicing=True, vae_tiling=True))
    assert both.pipeline.vae.use_slicing and both.pipeline.vae.use_tiling


def test_a_tiled_decode_equals_the_plain_one_within_tolerance(own_tiny_sd):
    vae = own_tiny_sd.pipeline.vae
    batch = latents(own_tiny_sd, 2, 256)  # (2, 4, 32, 32): image 0 tiled below, image 1 an unrelated one
    plain = own_tiny_sd.decode(batch)
    apply_memory_options(own_tiny_sd, MemoryOptions(vae_tiling=True))
    # tiles are the VAE's sample_size (SD 1.5: 512 px) and tiny-sd's is larger than this image: 128 px tiles here
    before = vae.tile_sample_min_size, vae.tile_latent_min_size
    vae.tile_sample_min_size, vae.tile_latent_min_size = 128, 16
    try:
        tiled = own_tiny_sd.decode(batch[:1])
    finally:
        vae.disable_tiling()
        vae.tile_sample_min_size, vae.tile_latent_min_size = before
    assert tiled.shape == (1, 3, 256, 256)
    difference = (tiled[0] - plain[0]).abs()
    assert difference.max() > 0  # four tiles really decoded apart and blended (each with its own group norms)
    # random weights make tile seams visible (measured: mean 0.024 against 0.17 to an unrelated image)
    assert difference.mean() < 0.25 * (plain[1] - plain[0]).abs().mean()


def test_a_sliced_decode_equals_the_batched_one(own_tiny_sd):
    batch = latents(own_tiny_sd, 3, 64)
    plain = own_tiny_sd.decode(batch)
    apply_memory_options(own_tiny_sd, MemoryOptions(vae_slicing=True))
    try:
        sliced = own_tiny_sd.decode(batch)
    finally:
        own_tiny_sd.pipeline.vae.disable_slicing()
    torch.testing.assert_close(sliced, plain, atol=1e-5, rtol=0)


def test_cpu_offload_installs_diffusers_hooks_for_the_adapters_gpu():
    """On this CPU-only machine: the hooks diffusers installs, without running them (tested running on a GPU below)."""
    adapter = load_model("testing:tiny-sd", device="cpu", dtype="fp32")
    adapter.device = torch.device("cuda")  # as if loaded there: offload is refused on the CPU
    apply_memory_options(adapter, MemoryOptions(cpu_offload=True))
    pipeline = adapter.pipeline
    for part in (pipeline.text_encoder, pipeline.unet, pipeline.vae):
        assert part._hf_hook.execution_device.type == "cuda"  # accelerate's CpuOffload hook
        assert part.device.type == "cpu"  # waiting in CPU memory until it runs
    assert adapter.denoiser is pipeline.unet  # our loop calls the hooked module itself


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CPU offload runs on a GPU")
def test_cpu_offload_on_a_gpu_gives_the_same_image_and_holds_less():
    plain = load_model("testing:tiny-sd", device="cuda", dtype="fp32")
    expected = torch.tensor(list(plain.generate("a red cat", steps=3, width=64, height=64).getdata()))
    del plain
    torch.cuda.empty_cache()
    offloaded = load_model("testing:tiny-sd", device="cuda", dtype="fp32", memory=MemoryOptions(cpu_offload=True))
    assert torch.cuda.memory_allocated() == 0  # everything waits on the CPU
    image = torch.tensor(list(offloaded.generate("a red cat", steps=3, width=64, height=64).getdata()))
    assert (image - expected).abs().max() <= 1


def test_offload_without_a_gpu_is_one_line():
    with pytest.raises(UserError, match="--cpu-offload .* runs on the CPU"):
        check_memory_options(MemoryOptions(cpu_offload=True), torch.device("cpu"))


def test_memory_options_on_a_model_without_a_pipeline_or_a_vae_are_one_line():
    shapes = load_model("embedded:shapes", device="cpu", dtype="fp32")
    with pytest.raises(UserError, match="--vae-tiling: embedded:shapes is not a diffusers pipeline"):
        apply_memory_options(shapes, MemoryOptions(vae_tiling=True))
    tiny_if = load_model("testing:tiny-if", device="cpu", dtype="fp32")
    with pytest.raises(UserError, match="--vae-slicing: testing:tiny-if has no VAE"):
        apply_memory_options(tiny_if, MemoryOptions(vae_slicing=True))


def test_dtype_names_and_a_dtype_the_device_cannot_run(monkeypatch):
    cpu = torch.device("cpu")
    assert resolve_dtype("float16", cpu) is resolve_dtype("fp16", cpu) is torch.float16
    assert resolve_dtype("bfloat16", cpu) is torch.bfloat16 and resolve_dtype("float32", cpu) is torch.float32
    with pytest.raises(UserError, match="unknown dtype 'half'"):
        resolve_dtype("half", cpu)

    def no_half(*args, **kwargs):
        raise RuntimeError('"slow_conv2d_cpu" not implemented for \'Half\'')

    monkeypatch.setattr(torch.nn.functional, "conv2d", no_half)  # as on a torch build without fp16 convolutions
    with pytest.raises(UserError, match=r"--dtype float16: this cpu device cannot compute in float16 \(\"slow_conv2d"):
        resolve_dtype("float16", cpu)


def test_bake_cli_refuses_offload_on_the_cpu_in_one_line_and_writes_nothing(tmp_path):
    (tmp_path / "p.yaml").write_text(PROMPTS.replace("MODEL", "testing:tiny-sd"))
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "generator", "bake", str(tmp_path / "p.yaml"), "--device", "cpu",
                             "--cpu-offload", "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --cpu-offload keeps the weights in CPU memory"), lines
    assert not out.exists() or not any(out.iterdir())


def test_bake_cli_passes_vae_options_to_the_model_it_loads(tmp_path, monkeypatch):
    import generator.models.registry as registry
    from generator.cli import app

    loaded = []
    real = registry.apply_memory_options

    def applying(adapter, memory):
        loaded.append(real(adapter, memory))
        return adapter

    monkeypatch.setattr(registry, "apply_memory_options", applying)
    (tmp_path / "p.yaml").write_text(PROMPTS.replace("MODEL", "testing:tiny-sd"))
    result = CliRunner().invoke(app, ["bake", str(tmp_path / "p.yaml"), "--device", "cpu", "--vae-slicing",
                                      "--vae-tiling", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    (adapter,) = loaded
    assert adapter.pipeline.vae.use_slicing and adapter.pipeline.vae.use_tiling
    assert (tmp_path / "out" / "prompts" / "cat.json").is_file()
