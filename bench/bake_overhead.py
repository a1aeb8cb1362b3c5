"""Benchmark: a full bake of one prompt over a plain ``pipeline(prompt)`` call, same model, steps and size.

Both are timed alternately in one run (median of --repeats) so machine noise hits both alike.
  CPU:  python bench/bake_overhead.py                       (testing:tiny-sd, 64x64)
  GPU:  python bench/bake_overhead.py --full-size           (SD-1.5-architecture random UNet, 512x512 fp16)
Target: ratio <= 1.5.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch


def full_size_sd(device: torch.device, dtype: torch.dtype) -> object:
    """A random-weight pipeline with SD 1.5's real UNet/VAE/text-encoder sizes, built from config locally."""
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from generator.models.testing.pipelines import SD_SCHEDULE, load_tokenizer

    torch.manual_seed(0)
    tokenizer = load_tokenizer()
    text_encoder = CLIPTextModel(CLIPTextConfig(vocab_size=len(tokenizer), hidden_size=768, intermediate_size=3072,
                                                num_attention_heads=12, num_hidden_layers=12, max_position_embeddings=77,
                                                bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id))
    unet = UNet2DConditionModel(sample_size=64, cross_attention_dim=768)  # the defaults are SD 1.x's UNet
    vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
                        up_block_types=("UpDecoderBlock2D",) * 4, layers_per_block=2, latent_channels=4, sample_size=512)
    pipeline = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                       scheduler=DDIMScheduler(**SD_SCHEDULE), safety_checker=None,
                                       feature_extractor=None, requires_safety_checker=False)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline.to(device, dtype)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full-size", action="store_true", help="SD-1.5-size random UNet at 512x512 (GPU)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-daam", action="store_true", help="bake without DAAM")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (1 keeps shared machines from oversubscribing; 0: torch's choice)")
    args = parser.parse_args()

    from generator.bake.runner import bake
    from generator.devices import resolve_device
    from generator.models.stable_diffusion import StableDiffusionAdapter
    from generator.models.testing.pipelines import build_tiny_sd
    from generator.spec.prompt_set import load_prompt_set

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device("auto")
    if args.full_size:
        dtype = torch.float16 if device.type == "cuda" else torch.float32
        pipeline, size, model_id = full_size_sd(device, dtype), 512, "testing:tiny-sd"
    else:
        pipeline, size, model_id = build_tiny_sd(device, torch.float32), 64, "testing:tiny-sd"
    adapter = StableDiffusionAdapter(pipeline, model_id)
    prompt = "a smiling, red cat chewing gum"

    def synchronize() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    def plain() -> tuple[float, float]:
        synchronize()
        start, start_cpu = time.perf_counter(), time.process_time()
        pipeline(prompt, num_inference_steps=args.steps, guidance_scale=7.5, height=size, width=size,
                 generator=torch.Generator(device).manual_seed(0))
        synchronize()
        return time.perf_counter() - start, time.process_time() - start_cpu

    def baked(folder: Path) -> tuple[float, float]:
        spec = folder / "bench.yaml"
        spec.write_text(f"model: {model_id}\ndefaults: {{steps: {args.steps}, width: {size}, height: {size}, "
                        f"daam: {str(not args.no_daam).lower()}}}\nprompts:\n  - {{id: bench, text: '{prompt}'}}\n")
        synchronize()
        start, start_cpu = time.perf_counter(), time.process_time()
        bake(load_prompt_set(spec), folder / "generated", adapter=adapter, force=True)
        synchronize()
        return time.perf_counter() - start, time.process_time() - start_cpu

    plain()  # warm-up (kernels, allocator)
    plain_times, bake_times = [], []
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(args.repeats):
            plain_times.append(plain())
            bake_times.append(baked(Path(folder)))
    print(f"device={device.type} size={size} steps={args.steps} repeats={args.repeats} daam={not args.no_daam} "
          f"threads={torch.get_num_threads()}")
    for label, index in (("wall", 0), ("cpu", 1)):
        plain_median = statistics.median(t[index] for t in plain_times)
        bake_median = statistics.median(t[index] for t in bake_times)
        print(f"{label}: pipeline(prompt) {plain_median:.3f} s   full bake {bake_median:.3f} s   "
              f"bake / pipeline = {bake_median / plain_median:.2f}x  (target <= 1.5x)")


if __name__ == "__main__":
    main()
