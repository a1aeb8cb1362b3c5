"""Benchmark: what DAAM tracing costs, traced over untraced generation, time and peak memory, in one run.

    python bench/daam_overhead.py                       # testing:tiny-sd on the CPU (+ SD-1.5 size on CUDA)
    python bench/daam_overhead.py --castorini-src DIR   # also castorini's daam 0.2.0 (unpacked sdist) if it imports

CPU: median wall time of interleaved runs; peak memory as the peak RSS of a fresh worker process per mode
(torch's CPU allocator is invisible to tracemalloc), plus the bytes DAAM's accumulators hold. CUDA: a
full-size Stable Diffusion 1.5 architecture (UNet, CLIP ViT-L text encoder, VAE) with random weights built
from config on the GPU (nothing downloaded), 512x512, fp16, CFG 7.5, the diffusers pipeline called directly;
torch.cuda.max_memory_allocated per run. Target: traced / untraced <= 1.10 for both.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

PROMPT = "a photograph of a cat chewing gum on halloween"


def _accumulator_bytes(traced: object) -> int:
    return sum(t.numel() * t.element_size() for t in traced.record.accumulator.sums.values())


def _interleaved(run_plain, run_traced, repeats: int, clock=time.perf_counter) -> tuple[list[float], list[float]]:
    """Alternate untraced and traced runs (after one warm-up each) so drift hits both alike."""
    run_plain(), run_traced()
    plain, traced = [], []
    for _ in range(repeats):
        for runner, times in ((run_plain, plain), (run_traced, traced)):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            start = clock()
            runner()
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            times.append(clock() - start)
    return plain, traced


# -- CPU: testing:tiny-sd ------------------------------------------------------------------------------------

def _tiny(steps: int):
    from generator.models import load_model

    adapter = load_model("testing:tiny-sd", device="cpu", dtype="fp32")
    return adapter, lambda: adapter.generate(PROMPT, steps=steps, guidance=7.5)


def cpu_worker(mode: str, steps: int) -> None:
    """One generation in a fresh process; prints its peak RSS (and DAAM's held bytes)."""
    from generator.daam import trace

    adapter, generate = _tiny(steps)
    held = 0
    if mode == "traced":
        with trace(adapter) as traced:
            generate()
        traced.word_map("cat")
        held = _accumulator_bytes(traced)
    else:
        generate()
    print(json.dumps({"peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "held": held}))


def bench_cpu(steps: int, repeats: int) -> dict:
    from generator.daam import trace

    adapter, generate = _tiny(steps)

    def traced_run():
        with trace(adapter):
            generate()

    # a shared CPU (other jobs) makes wall time noisy: the fastest of interleaved runs, and process CPU time
    plain, traced = _interleaved(generate, traced_run, repeats)
    plain_cpu, traced_cpu = _interleaved(generate, traced_run, repeats, clock=time.process_time)
    memory = {}
    for mode in ("plain", "traced"):
        out = subprocess.run([sys.executable, __file__, "--worker", mode, "--cpu-steps", str(steps)],
                             capture_output=True, text=True, check=True)
        memory[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    return {
        "name": f"testing:tiny-sd, CPU fp32, 64x64, {steps} steps, CFG",
        "time": (min(plain), min(traced)),
        "cpu_time": (min(plain_cpu), min(traced_cpu)),
        "memory": (memory["plain"]["peak_rss"], memory["traced"]["peak_rss"]),
        "memory_kind": "peak RSS of a fresh process",
        "held": memory["traced"]["held"],
    }


# -- CUDA: SD-1.5 architecture, random weights -----------------------------------------------------------------

def build_sd15(device: str = "cuda", dtype: torch.dtype = torch.float16) -> object:
    """StableDiffusionPipeline with SD 1.5's shapes (860M-parameter UNet), random weights."""
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from generator.models.testing.pipelines import SD_SCHEDULE, load_tokenizer

    torch.manual_seed(0)
    tokenizer = load_tokenizer()
    with torch.device(device):
        unet = UNet2DConditionModel(
            sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
            block_out_channels=(320, 640, 1280, 1280),
            down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
            up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
            cross_attention_dim=768, attention_head_dim=8,
        )
        text_encoder = CLIPTextModel(CLIPTextConfig(
            vocab_size=len(tokenizer), hidden_size=768, intermediate_size=3072, num_attention_heads=12,
            num_hidden_layers=12, max_position_embeddings=77, bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        ))
        vae = AutoencoderKL(
            in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2, sample_size=512,
            block_out_channels=(128, 256, 512, 512),
            down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        )
    pipe = StableDiffusionPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=DDIMScheduler(**SD_SCHEDULE),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    if dtype != torch.float32:
        pipe = pipe.to(device, dtype)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def bench_sd15_cpu(size: int, steps: int, repeats: int) -> dict:
    """The SD-1.5 architecture on the CPU (fp32) at a small size: the recorder's cost at real channel widths."""
    from generator.daam import trace

    pipe = build_sd15("cpu", torch.float32)
    generate = lambda: pipe(PROMPT, num_inference_steps=steps, guidance_scale=7.5, height=size, width=size,  # noqa: E731
                            generator=torch.Generator().manual_seed(0), output_type="latent")

    def traced_run():
        with trace(pipe):
            generate()

    plain, traced = _interleaved(generate, traced_run, repeats, clock=time.process_time)
    return {
        "name": f"SD-1.5 architecture (random weights), CPU fp32, {size}x{size}, {steps} steps, CFG (UNet only)",
        "time": (min(plain), min(traced)),
        "memory": (1, 1),
        "memory_kind": "not measured",
        "held": None,
    }


def bench_gpu(steps: int, repeats: int, castorini_src: str | None) -> list[dict]:
    from generator.daam import trace

    pipe = build_sd15()
    generator = lambda: torch.Generator("cuda").manual_seed(0)  # noqa: E731
    generate = lambda: pipe(PROMPT, num_inference_steps=steps, guidance_scale=7.5, height=512, width=512,  # noqa: E731
                            generator=generator(), output_type="pt")
    held = {}

    def traced_run():
        with trace(pipe) as traced:
            generate()
        held["bytes"] = _accumulator_bytes(traced)

    def peak(runner) -> int:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        runner()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated()

    plain, traced = _interleaved(generate, traced_run, repeats)
    results = [{
        "name": f"SD-1.5 architecture (random weights), {torch.cuda.get_device_name()}, fp16, 512x512, {steps} steps, CFG",
        "time": (statistics.median(plain), statistics.median(traced)),
        "memory": (peak(generate), peak(traced_run)),
        "memory_kind": "torch.cuda.max_memory_allocated",
        "held": held["bytes"],
    }]
    if castorini_src:
        module, reason = import_castorini(castorini_src, stub_missing=True)
        if module is not None:
            def castorini_run():
                with module.trace(pipe) as tc:
                    generate()
                    tc.compute_global_heat_map()
            try:
                plain_c, traced_c = _interleaved(generate, castorini_run, repeats)
                results.append({
                    "name": "castorini daam 0.2.0 (missing deps stubbed), same pipeline",
                    "time": (statistics.median(plain_c), statistics.median(traced_c)),
                    "memory": (peak(generate), peak(castorini_run)),
                    "memory_kind": "torch.cuda.max_memory_allocated",
                    "held": None,
                })
            except Exception as error:  # its failure is a finding, not a crash of the benchmark
                print(f"castorini daam 0.2.0 imported (stubs) but failed on diffusers {_version('diffusers')}: "
                      f"{type(error).__name__}: {str(error)[:200]}")
    return results


# -- castorini/daam 0.2.0 -----------------------------------------------------------------------------------------

def _version(package: str) -> str:
    from importlib import metadata

    return metadata.version(package)


def import_castorini(source: str, stub_missing: bool) -> tuple[object | None, str]:
    """Import daam 0.2.0 from an unpacked sdist beside our diffusers; (module, '') or (None, reason).

    With ``stub_missing``, its non-diffusers dependencies that are absent (matplotlib, spaCy, scikit-image,
    nltk, inflect) become empty modules, to see whether its diffusers-facing code still loads.
    """
    import importlib.machinery
    import importlib.util
    import types

    import diffusers  # noqa: F401  (before any stub: diffusers probes optional packages at import)
    import transformers  # noqa: F401

    stubbed = []
    if stub_missing:
        class Stub(types.ModuleType):
            def __getattr__(self, name):
                if name.startswith("__"):
                    raise AttributeError(name)
                return Stub(f"{self.__name__}.{name}")

            def __call__(self, *args, **kwargs):
                return Stub("call")

        for name in ("matplotlib", "matplotlib.pyplot", "spacy", "spacy.tokens", "skimage", "nltk", "inflect"):
            top = name.split(".")[0]
            if top not in stubbed and importlib.util.find_spec(top) is not None:
                continue
            module = Stub(name)
            module.__spec__ = importlib.machinery.ModuleSpec(name, None, is_package=True)
            module.__path__ = []
            sys.modules[name] = module
            stubbed.append(top)
    sys.path.insert(0, source)
    try:
        import daam as castorini  # noqa: PLC0415
    except Exception as error:
        return None, f"{type(error).__name__}: {error}"
    finally:
        sys.path.remove(source)
    if stub_missing and stubbed:
        print(f"castorini daam 0.2.0 imports only with stubs for its absent dependencies {sorted(set(stubbed))}")
    return castorini, ""


def castorini_report(source: str | None) -> None:
    if not source:
        print("castorini daam 0.2.0: not measured (pass --castorini-src with `pip download --no-deps daam==0.2.0` unpacked)")
        return
    requirements = Path(source, "requirements.txt")
    pins = [line for line in requirements.read_text().split() if "==" in line] if requirements.exists() else []
    code = f"import sys; sys.path.insert(0, {source!r}); import daam"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if out.returncode == 0:
        print("castorini daam 0.2.0 imports beside diffusers", _version("diffusers"))
    else:
        last = out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "unknown error"
        print(f"castorini daam 0.2.0 cannot be imported as installed (--no-deps) beside diffusers "
              f"{_version('diffusers')}: {last}; it pins {', '.join(pins)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu-steps", type=int, default=10)
    parser.add_argument("--gpu-steps", type=int, default=25)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--castorini-src", default=None, help="unpacked daam-0.2.0 sdist folder")
    parser.add_argument("--skip-cpu", action="store_true")
    parser.add_argument("--sd15-cpu", type=int, default=0, metavar="SIZE",
                        help="also time the SD-1.5 architecture on the CPU at SIZE x SIZE (CPU time; slow)")
    parser.add_argument("--worker", choices=("plain", "traced"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        cpu_worker(args.worker, args.cpu_steps)
        return
    results = [] if args.skip_cpu else [bench_cpu(args.cpu_steps, args.repeats)]
    if args.sd15_cpu:
        results.append(bench_sd15_cpu(args.sd15_cpu, 2, max(1, args.repeats - 1)))
    if torch.cuda.is_available():
        results += bench_gpu(args.gpu_steps, args.repeats, args.castorini_src)
    else:
        print("no CUDA GPU here: the SD-1.5-size measurement is skipped")
    castorini_report(args.castorini_src)
    for result in results:
        (plain_t, traced_t), (plain_m, traced_m) = result["time"], result["memory"]
        print(f"\n{result['name']}")
        print(f"  time    untraced {plain_t:8.3f} s   traced {traced_t:8.3f} s   ratio {traced_t / plain_t:.3f}x")
        if "cpu_time" in result:
            plain_c, traced_c = result["cpu_time"]
            print(f"  CPU     untraced {plain_c:8.3f} s   traced {traced_c:8.3f} s   ratio {traced_c / plain_c:.3f}x  (process time)")
        if result["memory_kind"] != "not measured":
            print(f"  memory  untraced {plain_m / 2**20:8.1f} MiB traced {traced_m / 2**20:8.1f} MiB ratio "
                  f"{traced_m / plain_m:.3f}x  ({result['memory_kind']})")
        if result["held"] is not None:
            print(f"  DAAM accumulators hold {result['held'] / 2**20:.2f} MiB (fixed by bins and resolutions, not steps)")


if __name__ == "__main__":
    main()
