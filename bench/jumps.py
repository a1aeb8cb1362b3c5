"""Benchmark: K jump points x J steps, all branches batched (one denoiser call per jump step) over the same
branches run one at a time (K x J sequential denoiser calls), in one run.

  CPU:  python bench/jumps.py                        (testing:tiny-sd, 64x64)
  GPU:  python bench/jumps.py --full-size            (SD-1.5-architecture random UNet, 512x512 fp16)
The ideal ratio is J / (K x J) = 1 / K (a batch of K costs what one row costs); on a CPU, where a batch of
K costs about K rows, expect about 1. No call is saved by reusing the trajectory's prediction here
(every branch computes its first step), so the counts are exactly J and K x J.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full-size", action="store_true", help="SD-1.5-size random UNet at 512x512 (GPU)")
    parser.add_argument("--points", "-k", type=int, default=5, help="K: jump points")
    parser.add_argument("--jump-steps", "-j", type=int, default=4, help="J: steps per jump")
    parser.add_argument("--guidance", type=float, default=7.5)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from bake_overhead import full_size_sd  # same folder

    from generator.devices import resolve_device
    from generator.experiments.prompt.jumps import JumpStart, run_jumps
    from generator.models.stable_diffusion import StableDiffusionAdapter
    from generator.models.testing.pipelines import build_tiny_sd

    device = resolve_device("auto")
    if args.full_size:
        dtype = torch.float16 if device.type == "cuda" else torch.float32
        pipeline, size = full_size_sd(device, dtype), 512
    else:
        pipeline, size = build_tiny_sd(device, torch.float32), 64
    adapter = StableDiffusionAdapter(pipeline, "testing:tiny-sd")
    embeddings = adapter.encode_prompts(["a smiling, red cat chewing gum"])
    scheduler = adapter.make_scheduler("ddim")
    scheduler.set_timesteps(args.points * 5)
    generator = torch.Generator("cpu").manual_seed(0)
    latent_shape = adapter.latent_shape(size, size)
    starts = [
        JumpStart(i * 5, float(scheduler.timesteps[i * 5]), torch.randn(latent_shape, generator=generator))
        for i in range(args.points)
    ]
    calls = []
    denoise = adapter.denoise

    def counting(model_input, timestep, emb):
        calls.append(model_input.shape[0])
        return denoise(model_input, timestep, emb)

    adapter.denoise = counting

    def synchronize() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    def timed(batched: bool) -> tuple[float, int]:
        calls.clear()
        synchronize()
        start = time.perf_counter()
        run_jumps(adapter, embeddings, scheduler, starts, [args.jump_steps], guidance=args.guidance, batched=batched)
        synchronize()
        return time.perf_counter() - start, len(calls)

    timed(True)  # warm-up (kernels, allocator)
    batched, sequential = [], []
    for _ in range(args.repeats):  # alternate so machine noise hits both alike
        seconds, batched_calls = timed(True)
        batched.append(seconds)
        seconds, sequential_calls = timed(False)
        sequential.append(seconds)
    b, s = statistics.median(batched), statistics.median(sequential)
    k, j = args.points, args.jump_steps
    print(f"device {device.type}, {size}x{size}, guidance {args.guidance}, K = {k} jump points, J = {j} steps")
    print(f"batched:    {batched_calls} denoiser calls of {k} branches   {b:.3f} s (median of {args.repeats})")
    print(f"sequential: {sequential_calls} denoiser calls of 1 branch     {s:.3f} s")
    print(f"ratio batched / sequential = {b / s:.3f}   (call ratio J / (K x J) = {j / (k * j):.3f})")


if __name__ == "__main__":
    main()
