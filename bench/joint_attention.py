"""Benchmark: word maps on joint attention (SD3, Flux) at real model sizes, random weights (issue 21, item 3).

The transformers are built from config with random weights (nothing is downloaded): SD3 medium
(``SD3Transformer2DModel`` with its published config: 24 MMDiT blocks, width 1536 = 24 heads x 64, patch 2,
16 latent channels; 2.03B parameters) and Flux (``FluxTransformer2DModel`` at its real width 3072 = 24 heads
x 128, guidance-embedded like Flux-dev, with ``--flux-blocks`` double- and single-stream blocks of the released
19 + 38: the 12B model takes 48 GB in fp32). The text encoders are not what is measured: the prompt embeddings
are random tensors of the real shapes (SD3: 77 CLIP + 256 T5 tokens of 4096, pooled 2048; Flux-dev: 512 T5 tokens
of 4096, pooled 768); the VAE is a small one (nothing is decoded). Each model runs through the real adapters
(``SD3Adapter`` / ``FluxAdapter``) and our own loop, one transformer call per step (SD3 at guidance 1: the
conditional branch only; Flux-dev: its one distilled call), with the maps recorded exactly as the bake records
them: ``trace(adapter, map_kind=..., **capture_options(adapter))`` (generator/daam/joint.py).

Three runs of each model, side by side: plain, word maps (``map_kind="attention"``: image -> text softmax
probabilities, in chunks of 1024 queries) and ConceptAttention's output-space maps (``"concept-output"``). The
model is built once; each run is a fork of that process, so all three start from the same state and each
child's peak RSS (``ru_maxrss``) is its own run's. Times are the child's CPU seconds (one torch thread: less
moved by other jobs on a shared machine than wall time, which is printed too). CPU time spent in each kind of
block is measured by forward hooks, so a Flux with fewer blocks is scaled linearly to 19 + 38 (blocks of one
kind do identical work).

The chunk check: one block (SD3: MMDiT; Flux: double-stream) at the real width and 1024x1024 (4096 image
tokens, 4 chunks), the recorder's extra peak memory over the plain call next to what the (image + text)^2
probability matrix would take, and the recorder's own function (``image_to_text_probabilities``) on that
layer's queries and keys (random inputs of the real shapes) chunked
(1024 queries) against one chunk of all queries.

    nice -n 10 .venv/bin/python bench/joint_attention.py                      # fp32 CPU, 256x256, 2 steps
    nice -n 10 .venv/bin/python bench/joint_attention.py --models sd3 --size 512 --steps 3
    nice -n 10 .venv/bin/python bench/joint_attention.py --models flux --flux-blocks 19 38   # 12B: 48 GB RAM
CPU only, fp32 (a GPU path is not written: none was available to test it).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
PROMPT = "a smiling, red cat chewing gum"
WORD = "cat"
MODES = ("plain", "attention", "concept-output")
NAMES = {"sd3": "SD3 medium", "flux": "Flux-dev"}
FLUX_BLOCKS = (19, 38)  # the released model's double- and single-stream blocks
TEXT = {"sd3": (77 + 256, 4096, 2048), "flux": (512, 4096, 768)}  # (text tokens, width, pooled width)


def sd3_config(layers: int = 24) -> dict:
    """SD3 medium's transformer/config.json (stabilityai/stable-diffusion-3-medium-diffusers)."""
    return {"sample_size": 128, "patch_size": 2, "in_channels": 16, "out_channels": 16, "num_layers": layers,
            "attention_head_dim": 64, "num_attention_heads": 24, "joint_attention_dim": 4096,
            "caption_projection_dim": 1536, "pooled_projection_dim": 2048, "pos_embed_max_size": 192}


def flux_config(double: int = FLUX_BLOCKS[0], single: int = FLUX_BLOCKS[1]) -> dict:
    """FLUX.1-dev's transformer/config.json, with ``double`` + ``single`` blocks instead of 19 + 38."""
    return {"patch_size": 1, "in_channels": 64, "num_layers": double, "num_single_layers": single,
            "attention_head_dim": 128, "num_attention_heads": 24, "joint_attention_dim": 4096,
            "pooled_projection_dim": 768, "guidance_embeds": True, "axes_dims_rope": (16, 56, 56)}


def transformer(model: str, blocks: tuple[int, int]) -> object:
    """The diffusers transformer with random weights (SD3: ``blocks[0]`` MMDiT blocks; Flux: double, single)."""
    from diffusers import FluxTransformer2DModel, SD3Transformer2DModel

    if model == "sd3":
        return SD3Transformer2DModel(**sd3_config(blocks[0])).eval()
    return FluxTransformer2DModel(**flux_config(*blocks)).eval()


def parameter_count(model: str, blocks: tuple[int, int]) -> int:
    """Parameters of the transformer, counted on the meta device (nothing allocated)."""
    from accelerate import init_empty_weights

    with init_empty_weights():
        return sum(p.numel() for p in transformer(model, blocks).parameters())


def adapter_for(model: str, blocks: tuple[int, int]) -> object:
    """The project's own SD3Adapter / FluxAdapter over a pipeline holding the real-size transformer.

    No text encoders (the embeddings are random tensors of the real shapes); the local test tokenizers give the
    words' token positions; a small 16-channel, 8x VAE stands in for the real one (nothing is decoded).
    """
    import torch
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxPipeline, StableDiffusion3Pipeline

    from generator.models.flow import FluxAdapter, SD3Adapter
    from generator.models.testing.deepfloyd_if import build_tokenizer as t5_tokenizer
    from generator.models.testing.pipelines import load_tokenizer

    torch.manual_seed(0)
    vae = AutoencoderKL(down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                        block_out_channels=(8, 8, 16, 16), latent_channels=16, norm_num_groups=4).eval()
    denoiser = transformer(model, blocks)
    if model == "sd3":
        pipeline = StableDiffusion3Pipeline(
            transformer=denoiser, vae=vae, scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
            text_encoder=None, tokenizer=load_tokenizer(), text_encoder_2=None, tokenizer_2=load_tokenizer(),
            text_encoder_3=None, tokenizer_3=t5_tokenizer())
        return SD3Adapter(pipeline, "bench:sd3-medium-random", text_tokens=256)
    scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15,
                                                base_image_seq_len=256, max_image_seq_len=4096)
    pipeline = FluxPipeline(transformer=denoiser, vae=vae, scheduler=scheduler, text_encoder=None,
                            tokenizer=load_tokenizer(), text_encoder_2=None, tokenizer_2=t5_tokenizer())
    return FluxAdapter(pipeline, "bench:flux-dev-random", text_tokens=512)


def random_embeddings(model: str, adapter: object) -> object:
    """PromptEmbeddings of the real shapes (random values) for PROMPT: what the text encoders would give."""
    import torch

    from generator.models.base import Embeddings, PromptEmbeddings

    tokens, width, pooled = TEXT[model]
    generator = torch.Generator().manual_seed(1)

    def branch() -> Embeddings:
        return Embeddings(torch.randn(1, tokens, width, generator=generator).to(adapter.dtype),
                          {"pooled_projections": torch.randn(1, pooled, generator=generator).to(adapter.dtype)})

    return PromptEmbeddings(branch(), branch(), (PROMPT,))


def block_timer(denoiser: object) -> dict[str, float]:
    """CPU seconds spent in each kind of block ('joint', 'double', 'single'), accumulated by forward hooks."""
    seconds: dict[str, float] = {}
    inner = denoiser.transformer
    kinds = {"joint": getattr(inner, "transformer_blocks", [])} if not hasattr(inner, "single_transformer_blocks") \
        else {"double": inner.transformer_blocks, "single": inner.single_transformer_blocks}
    for kind, blocks in kinds.items():
        for block in blocks:
            started: list[float] = []
            block.register_forward_pre_hook(lambda *_, s=started: s.append(time.process_time()))
            block.register_forward_hook(lambda *_, s=started, k=kind: seconds.__setitem__(
                k, seconds.get(k, 0.0) + time.process_time() - s.pop()))
    return seconds


def rss_gb() -> float:
    """This process's resident memory now, GB."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e9


def peak_gb() -> float:
    """This process's peak resident memory, GB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9


def run_mode(model: str, adapter: object, mode: str, size: int, steps: int, seconds: dict) -> dict:
    """One generation of ``steps`` steps through our loop, plain or traced; time, peak RSS, the map's sanity."""
    import torch

    from generator.bake.prompt.daam_parts import capture_options
    from generator.daam import trace
    from generator.diffusion.sampling import initial_noise, sample

    embeddings = random_embeddings(model, adapter)
    scheduler = adapter.make_scheduler(width=size, height=size)
    scheduler.set_timesteps(steps)
    noise = initial_noise(adapter, 1, size, size, torch.Generator().manual_seed(0)) * scheduler.init_noise_sigma
    guidance = 1.0 if model == "sd3" else 3.5  # SD3: the conditional call only; Flux-dev: its distilled input
    at_start, result = rss_gb(), {}
    started, cpu_started = time.perf_counter(), time.process_time()
    with torch.inference_mode():
        if mode == "plain":
            latents = sample(adapter, embeddings, scheduler, noise, guidance=guidance)
        else:
            with trace(adapter, timestep_bins=steps, map_kind=mode, **capture_options(adapter)) as traced:
                latents = sample(adapter, embeddings, scheduler, noise, guidance=guidance)
            word_map = traced.word_map(WORD)
            result = {"layers": len(traced.layers), "map_finite": bool(torch.isfinite(word_map).all()),
                      "map_range": float(word_map.max() - word_map.min())}
    return {**result, "seconds": time.process_time() - cpu_started, "wall_s": time.perf_counter() - started,
            "peak_gb": peak_gb(), "start_gb": at_start,
            "blocks_s": dict(seconds), "latents_finite": bool(torch.isfinite(latents).all())}


def forked(work) -> dict:
    """``work()`` in a forked child (same memory, copy-on-write); its result and the child's own peak RSS."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            payload = json.dumps(work())
        except BaseException as error:  # the parent reports it
            payload = json.dumps({"error": repr(error)})
        with os.fdopen(write, "w") as out:
            out.write(payload)
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as incoming:
        text = incoming.read()
    os.waitpid(pid, 0)
    result = json.loads(text)
    if "error" in result:
        raise SystemExit(f"child failed: {result['error']}")
    return result


def chunk_check(model: str, blocks: tuple[int, int]) -> dict:
    """The recorder on one layer of the real width at 1024x1024, against the size of the full matrix."""
    import torch

    from generator.daam.joint import CHUNK_SIZE, image_to_text_probabilities, joint_attention_layers, queries_and_keys

    adapter = adapter_for(model, blocks)
    seconds = block_timer(adapter.denoiser)
    runs = {mode: forked(lambda m=mode: run_mode(model, adapter, m, 1024, 1, seconds)) for mode in MODES[:2]}
    name, kind = next(iter(joint_attention_layers(adapter.denoiser).items()))  # the first block's attention
    attn = adapter.denoiser.get_submodule(name.removesuffix(".processor"))
    text_tokens, width = TEXT[model][0], attn.to_q.in_features
    image_tokens = (1024 // 8 // 2) ** 2
    generator = torch.Generator().manual_seed(2)
    hidden = torch.randn(1, image_tokens, width, generator=generator)
    context = torch.randn(1, text_tokens, width, generator=generator)

    def probabilities(chunk: int) -> dict:
        at_start = rss_gb()
        with torch.inference_mode():  # rotary left out: it changes values, not shapes
            query, key, text = queries_and_keys(attn, kind, hidden, context, None, text_tokens)
            image_to_text_probabilities(query, key, text, 77, chunk)
        return {"extra_gb": peak_gb() - at_start, "chunks": math.ceil(image_tokens / chunk)}

    keys = image_tokens + text_tokens
    return {"runs": runs, "layer": name, "heads": attn.heads, "image_tokens": image_tokens, "keys": keys,
            "full_matrix_gb": attn.heads * keys**2 * 4 / 1e9, "chunk_gb": attn.heads * CHUNK_SIZE * keys * 4 / 1e9,
            "chunked": forked(lambda: probabilities(CHUNK_SIZE)), "one_chunk": forked(lambda: probabilities(image_tokens))}


def measure(model: str, blocks: tuple[int, int], size: int, steps: int) -> dict:
    """Build once, then plain / word maps / ConceptAttention maps, each in a fork of the built process."""
    started = time.perf_counter()
    adapter = adapter_for(model, blocks)
    seconds = block_timer(adapter.denoiser)
    built = {"build_s": time.perf_counter() - started, "built_gb": rss_gb()}
    return {"built": built, **{mode: forked(lambda m=mode: run_mode(model, adapter, m, size, steps, seconds))
                               for mode in MODES}}


def scaled_seconds(run: dict, blocks: tuple[int, int], full: tuple[int, int]) -> float:
    """A Flux run's time with every block of the released model: per-kind block time scaled linearly."""
    outside = run["seconds"] - sum(run["blocks_s"].values())
    return (outside + run["blocks_s"].get("double", 0.0) * full[0] / blocks[0]
            + run["blocks_s"].get("single", 0.0) * full[1] / max(blocks[1], 1))


def report(model: str, blocks: tuple[int, int], size: int, steps: int, results: dict) -> None:
    """Print one model's runs and ratios."""
    plain = results["plain"]
    print(f"  built in {results['built']['build_s']:.0f} s, RSS {results['built']['built_gb']:.2f} GB")
    for mode in MODES:
        run = results[mode]
        maps = (f", {run['layers']} layers, '{WORD}' map finite {run['map_finite']}, range {run['map_range']:.3g}"
                if mode != "plain" else "")
        blocks_s = ", ".join(f"{k} {v:.1f} s" for k, v in run["blocks_s"].items())
        print(f"  {mode:15s} CPU {run['seconds']:6.1f} s ({blocks_s}; wall {run['wall_s']:.0f} s)  peak {run['peak_gb']:6.2f} GB "
              f"(+{1000 * (run['peak_gb'] - run['start_gb']):.0f} MB over the built model){maps}")
    for mode in MODES[1:]:
        run = results[mode]
        line = (f"  {mode}: CPU time {run['seconds'] / plain['seconds']:.2f}x, peak RSS {run['peak_gb'] / plain['peak_gb']:.3f}x, "
                f"the maps' own extra memory {1000 * (run['peak_gb'] - plain['peak_gb']):+.0f} MB")
        if model == "flux" and blocks != FLUX_BLOCKS:
            line += (f"; scaled to {FLUX_BLOCKS[0]} + {FLUX_BLOCKS[1]} blocks: time "
                     f"{scaled_seconds(run, blocks, FLUX_BLOCKS) / scaled_seconds(plain, blocks, FLUX_BLOCKS):.2f}x")
        print(line)


def report_chunks(check: dict) -> None:
    """Print the chunk check of one model."""
    plain, maps = check["runs"]["plain"], check["runs"]["attention"]
    print(f"  chunk check, 1024x1024: {check['image_tokens']} image queries, {check['keys']} keys, {check['heads']} heads; "
          f"the full (image + text)^2 probabilities would take {check['full_matrix_gb']:.2f} GB in fp32 "
          f"(one chunk of 1024 queries: {check['chunk_gb']:.2f} GB)")
    print(f"    one step through the loop: plain CPU {plain['seconds']:.1f} s, peak +{1000 * (plain['peak_gb'] - plain['start_gb']):.0f} MB; "
          f"with word maps CPU {maps['seconds']:.1f} s ({maps['seconds'] / plain['seconds']:.2f}x), peak "
          f"+{1000 * (maps['peak_gb'] - maps['start_gb']):.0f} MB: the maps add "
          f"{1000 * (maps['peak_gb'] - plain['peak_gb']):+.0f} MB (map finite {maps['map_finite']})")
    print(f"    {check['layer']}: image_to_text_probabilities in {check['chunked']['chunks']} chunks "
          f"+{1000 * check['chunked']['extra_gb']:.0f} MB; all queries in one chunk "
          f"+{1000 * check['one_chunk']['extra_gb']:.0f} MB")


def run_model(model: str, blocks: tuple[int, int], size: int, steps: int, chunks: bool) -> None:
    """One model's whole measurement (in its own process, so the next model starts from an empty one)."""
    import torch

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "1")))
    report(model, blocks, size, steps, measure(model, blocks, size, steps))
    if chunks:
        report_chunks(chunk_check(model, (1, 0)))  # one MMDiT / one double-stream block: the same keys as a single


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=list(NAMES), default=list(NAMES))
    parser.add_argument("--size", type=int, default=256, help="image side (latents: size / 8)")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--flux-blocks", type=int, nargs=2, default=(2, 4), metavar=("DOUBLE", "SINGLE"),
                        help="Flux's double- and single-stream blocks (released: 19 38)")
    parser.add_argument("--no-chunk-check", action="store_true", help="skip the one-block check at 1024x1024")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    options = parser.parse_args()
    blocks = {"sd3": (24, 0), "flux": tuple(options.flux_blocks)}
    if options.child:
        model = options.child[0]
        run_model(model, blocks[model], options.size, options.steps, options.child[1] == "chunks")
        return
    print(f"CPU fp32, {options.threads} torch thread(s), {options.steps} steps at {options.size}x{options.size} "
          f"({options.size // 8}x{options.size // 8} latents), batch 1, one transformer call per step", flush=True)
    for model in options.models:
        count = parameter_count(model, blocks[model])
        described = "24 MMDiT blocks" if model == "sd3" else (
            f"{blocks[model][0]} double + {blocks[model][1]} single blocks of {FLUX_BLOCKS[0]} + {FLUX_BLOCKS[1]}; "
            f"the released 12B: {parameter_count(model, FLUX_BLOCKS) / 1e9:.2f}B")
        print(f"{NAMES[model]}: {described}; this transformer {count / 1e9:.2f}B parameters, "
              f"{count * 4 / 1e9:.1f} GB in fp32", flush=True)
        command = [sys.executable, __file__, "--child", model, "none" if options.no_chunk_check else "chunks",
                   "--size", str(options.size), "--steps", str(options.steps),
                   "--flux-blocks", *map(str, options.flux_blocks)]
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "BENCH_THREADS": str(options.threads)}
        if subprocess.run(command, env=env).returncode:
            raise SystemExit(f"{model} failed")


if __name__ == "__main__":
    main()
