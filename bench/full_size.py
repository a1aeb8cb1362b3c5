"""Benchmark: the full bake at real model sizes against a plain ``pipeline(prompt)`` (issue 20, item 3).

The real architectures are built from config with random weights (nothing is downloaded): Stable Diffusion 1.5
at 512x512, SDXL at 1024x1024, DeepFloyd IF stage I (XL) at 64x64. One prompt is baked with the trajectory,
DAAM and jump previews on, next to a plain ``pipeline(prompt)`` of the same model, steps and size. Each
measurement runs in its own process, so peak memory is that run's: RSS on the CPU (``ru_maxrss``), allocated
memory on a GPU (``torch.cuda.max_memory_allocated``). A third run bakes without DAAM: the difference is
DAAM's own extra memory and time.

A model whose weights alone exceed ``--budget-gb`` (parameters counted on accelerate's meta device, without
allocating them) is reported as not fitting and skipped.

    nice .venv/bin/python bench/full_size.py --models sd15 --steps 3          # CPU, fp32 (what fits here)
    nice .venv/bin/python bench/full_size.py --fit-only                       # which models fit in --budget-gb
    python bench/full_size.py --steps 25                                      # GPU: fp16, every model
Targets on a GPU: full bake <= 1.3x the plain pipeline's time, peak memory <= 1.15x.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
PROMPT = "a smiling, red cat chewing gum"
SIZES = {"sd15": 512, "sdxl": 1024, "if": 64}
NAMES = {"sd15": "Stable Diffusion 1.5", "sdxl": "SDXL", "if": "DeepFloyd IF stage I (XL)"}


def _clip(tokenizer: object, hidden: int, layers: int, heads: int, intermediate: int, projection: int = 0) -> object:
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=intermediate,
                            num_attention_heads=heads, num_hidden_layers=layers, max_position_embeddings=77,
                            projection_dim=projection or hidden, bos_token_id=tokenizer.bos_token_id,
                            eos_token_id=tokenizer.eos_token_id)
    return (CLIPTextModelWithProjection if projection else CLIPTextModel)(config)


def _vae() -> object:
    from diffusers import AutoencoderKL

    return AutoencoderKL(block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
                         up_block_types=("UpDecoderBlock2D",) * 4, layers_per_block=2, latent_channels=4)


def build_sdxl() -> object:
    """SDXL base: UNet 2.6B (blocks 320/640/1280, 1/2/10 transformer layers), CLIP-L + OpenCLIP-bigG, its VAE."""
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel

    from generator.models.testing.pipelines import SD_SCHEDULE, load_tokenizer

    tokenizer = load_tokenizer()
    unet = UNet2DConditionModel(
        sample_size=128, block_out_channels=(320, 640, 1280), layers_per_block=2,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        transformer_layers_per_block=(1, 2, 10), attention_head_dim=(5, 10, 20), use_linear_projection=True,
        cross_attention_dim=2048, addition_embed_type="text_time", addition_time_embed_dim=256,
        projection_class_embeddings_input_dim=2816)
    schedule = {k: v for k, v in SD_SCHEDULE.items() if k not in ("clip_sample", "set_alpha_to_one")}
    return StableDiffusionXLPipeline(
        vae=_vae(), text_encoder=_clip(tokenizer, 768, 12, 12, 3072),
        text_encoder_2=_clip(tokenizer, 1280, 32, 20, 5120, projection=1280), tokenizer=tokenizer,
        tokenizer_2=load_tokenizer(), unet=unet, scheduler=EulerDiscreteScheduler(**schedule))


def build_if() -> object:
    """IF-I-XL: a 4.3B pixel-space UNet at 64x64 (blocks 512..2048, added-KV attention) and T5-XXL (4.8B)."""
    from diffusers import DDPMScheduler, IFPipeline, UNet2DConditionModel
    from transformers import T5Config, T5EncoderModel

    from generator.models.testing.deepfloyd_if import build_tokenizer

    tokenizer = build_tokenizer()
    text_encoder = T5EncoderModel(T5Config(vocab_size=len(tokenizer), d_model=4096, d_kv=64, d_ff=10240,
                                           num_layers=24, num_heads=64, feed_forward_proj="gated-gelu"))
    unet = UNet2DConditionModel(
        sample_size=64, in_channels=3, out_channels=6, layers_per_block=3, block_out_channels=(512, 1024, 1536, 2048),
        down_block_types=("ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D", "SimpleCrossAttnDownBlock2D",
                          "SimpleCrossAttnDownBlock2D"),
        mid_block_type="UNetMidBlock2DSimpleCrossAttn",
        up_block_types=("SimpleCrossAttnUpBlock2D",) * 3 + ("ResnetUpsampleBlock2D",),
        cross_attention_dim=2048, encoder_hid_dim=4096, attention_head_dim=64, addition_embed_type="text",
        addition_embed_type_num_heads=64, cross_attention_norm="group_norm", resnet_time_scale_shift="scale_shift",
        act_fn="gelu", class_embed_type=None)
    scheduler = DDPMScheduler(beta_schedule="squaredcos_cap_v2", thresholding=True, variance_type="learned_range")
    return IFPipeline(tokenizer=tokenizer, text_encoder=text_encoder, unet=unet, scheduler=scheduler,
                      safety_checker=None, feature_extractor=None, watermarker=None, requires_safety_checker=False)


def build(model: str) -> object:
    """The pipeline of ``model`` with random weights, in fp32 on the CPU."""
    import torch

    torch.manual_seed(0)
    if model == "sd15":
        from bake_overhead import full_size_sd

        return full_size_sd(torch.device("cpu"), torch.float32)
    pipeline = build_sdxl() if model == "sdxl" else build_if()
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def weight_gb(model: str, bytes_per_weight: int) -> float:
    """The model's weights in GB, counted on the meta device (nothing allocated)."""
    from accelerate import init_empty_weights

    if model == "sd15":
        return 1.07e9 * bytes_per_weight / 1e9  # UNet 860M + VAE 84M + CLIP-L 123M (the architecture's published count)
    with init_empty_weights():
        pipeline = build_sdxl() if model == "sdxl" else build_if()
    count = sum(p.numel() for c in pipeline.components.values() if hasattr(c, "parameters") for p in c.parameters())
    return count * bytes_per_weight / 1e9


def adapter_for(model: str, pipeline: object) -> object:
    if model == "if":
        from generator.models.deepfloyd_if import DeepFloydIFAdapter

        return DeepFloydIFAdapter(pipeline, "testing:tiny-if")
    from generator.models.stable_diffusion import StableDiffusionAdapter

    return StableDiffusionAdapter(pipeline, "testing:tiny-sdxl" if model == "sdxl" else "testing:tiny-sd")


def run_one(model: str, mode: str, steps: int, device_name: str) -> dict:
    """In a child process: build, move, run ``mode`` once; seconds and peak memory (GB) of the run."""
    import resource

    import torch

    pipeline = build(model)
    device = torch.device(device_name)
    if device.type == "cuda":
        pipeline = pipeline.to(device, torch.float16)
    size = SIZES[model]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # GB (Linux reports KB)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    if mode == "plain":
        pipeline(PROMPT, num_inference_steps=steps, height=size, width=size,
                 generator=torch.Generator(device).manual_seed(0))
    else:
        from generator.bake.runner import bake
        from generator.spec.prompt_set import load_prompt_set

        adapter = adapter_for(model, pipeline)
        with tempfile.TemporaryDirectory() as folder:
            spec = Path(folder) / "bench.yaml"
            spec.write_text(f"model: {adapter.id}\ndefaults: {{steps: {steps}, width: {size}, height: {size}, "
                            f"daam: {str(mode == 'bake').lower()}, jumps: {{every: 2, steps: [1]}}}}\n"
                            f"prompts:\n  - {{id: bench, text: '{PROMPT}'}}\n")
            bake(load_prompt_set(spec), Path(folder) / "generated", adapter=adapter, force=True)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    peak = (torch.cuda.max_memory_allocated() / 1e9 if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6)
    return {"seconds": seconds, "peak_gb": peak, "loaded_gb": before}


def measure(model: str, steps: int, device: str) -> dict[str, dict]:
    """Plain pipeline, full bake, bake without DAAM: each in its own process."""
    results = {}
    for mode in ("plain", "bake", "bake-no-daam"):
        command = [sys.executable, __file__, "--child", model, mode, str(steps), device]
        output = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        if output.returncode:
            raise SystemExit(f"{model} {mode} failed:\n{output.stderr[-3000:]}")
        results[mode] = json.loads(output.stdout.strip().splitlines()[-1])
        print(f"  {mode:13s} {results[mode]['seconds']:8.1f} s   peak {results[mode]['peak_gb']:6.2f} GB "
              f"(after building {results[mode]['loaded_gb']:.2f} GB)", flush=True)
    return results


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        model, mode, steps, device = sys.argv[2:6]
        print(json.dumps(run_one(model, mode, int(steps), device)))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=list(SIZES), default=list(SIZES))
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--budget-gb", type=float, default=24.0, help="memory this machine may use")
    parser.add_argument("--fit-only", action="store_true", help="only say whether each model's weights fit")
    options = parser.parse_args()
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    bytes_per_weight = 2 if device == "cuda" else 4
    print(f"device {device} ({'fp16' if device == 'cuda' else 'fp32'}), {options.steps} steps, "
          f"{torch.get_num_threads()} thread(s), budget {options.budget_gb:g} GB")
    for model in options.models:
        weights = weight_gb(model, bytes_per_weight)
        print(f"{NAMES[model]} at {SIZES[model]}x{SIZES[model]}: weights {weights:.1f} GB", flush=True)
        if weights > 0.8 * options.budget_gb:
            print(f"  does not fit: the weights alone take {weights:.1f} of {options.budget_gb:g} GB "
                  "(activations, the bake's frames and a second copy while moving come on top)")
            continue
        if options.fit_only:
            print("  fits by its weights (not run: --fit-only)")
            continue
        results = measure(model, options.steps, device)
        plain, full, no_daam = results["plain"], results["bake"], results["bake-no-daam"]
        print(f"  time: full bake / pipeline = {full['seconds'] / plain['seconds']:.2f}x (target 1.3x on a GPU); "
              f"DAAM adds {full['seconds'] - no_daam['seconds']:.1f} s")
        print(f"  peak memory: full bake / pipeline = {full['peak_gb'] / plain['peak_gb']:.2f}x (target 1.15x); "
              f"DAAM's own extra {1000 * (full['peak_gb'] - no_daam['peak_gb']):.0f} MB")


if __name__ == "__main__":
    main()
