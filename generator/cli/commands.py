"""CLI stage: bake, render, build, serve, models and --version (parse, call the library, draw progress)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Optional

import typer

from generator import __version__
from generator.cli.app import app
from generator.cli.bake_progress import bake_display
from generator.cli.progress import console, quiet_libraries
from generator.errors import UserError

GENERATED = Path("site/generated")
ALLOW_PICKLE_HELP = ("Let a model folder load pickled weights (.bin, .ckpt, .pt, .pth), which can run code; "
                     "only for folders you trust. Safetensors are used wherever a folder has them.")
PROCESSES_HELP = ("Bake with N local processes (prompts and chapters split by expected cost; the same files as one "
                  "process). For several GPUs or machines, run the command under 'accelerate launch' instead.")
# The default site: the built-in shapes models' gallery (the latent model's prompts on the pixel model's pages), then
# the chapters that have prompt files.
DEFAULT_PROMPTS = (Path("prompts/shapes.yaml"), Path("prompts/shapes-latent.yaml"), Path("prompts/course.yaml"),
                   Path("prompts/digits.yaml"))


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"diffatlas {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: bool = typer.Option(False, "--version", callback=_show_version, is_eager=True, help="Show the version."),
) -> None:
    """Bake diffusion-model experiments into an explorable, embeddable static site."""


def _checked_set(
    prompt_file: Path, model: Optional[str], device: str, dtype: str, only: list[str], daam: bool, allow_pickle: bool,
    memory: object = None,
) -> tuple[object, object]:
    """Load a prompt file and run every model-dependent check (nothing drawn yet): (prompt set, preflight)."""
    from generator.bake.preflight import preflight
    from generator.spec.prompt_set import load_prompt_set

    prompt_set = load_prompt_set(prompt_file, model_override=model)
    if only:
        prompt_set = prompt_set.only(only)
    if not daam:  # as if every prompt said `daam: false` (its cache key changes with it)
        from dataclasses import replace

        prompts = tuple(replace(p, settings=replace(p.settings, daam=False)) for p in prompt_set.prompts)
        prompt_set = replace(prompt_set, prompts=prompts)
    return prompt_set, preflight(prompt_set, device=device, dtype=dtype, allow_pickle=allow_pickle, memory=memory)


def _bake(
    prompt_file: Path, model: Optional[str], device: str, dtype: str, out: Path, only: list[str], force: bool,
    daam: bool = True, allow_pickle: bool = False, checked: tuple[object, object] | None = None,
    memory: object = None,
) -> object:
    """Bake one prompt file: every check first (a mistake is one line, nothing drawn), then header and progress.

    Under a launcher (``accelerate launch``, ``--processes``) this is one of several processes: the others'
    copies of a refusal stay silent (process 1 says it once) and exit 2.
    """
    from generator.bake.lock import check_unlocked
    from generator.bake.runner import bake
    from generator.bake.shard import ProcessGroup, launched_processes
    from generator.bake.store import AssetStore
    from generator.models.memory import MemoryOptions

    group = ProcessGroup.from_environment(device) if launched_processes() > 1 else ProcessGroup()
    try:
        prompt_set, preflight = checked or _checked_set(prompt_file, model, device, dtype, only, daam, allow_pickle,
                                                        memory)
        if group.is_main:
            AssetStore(out).check_writable()
            check_unlocked(out)  # refused before the header: one line (the bake itself takes the lock)
        quiet_libraries()
        if group.is_main:
            shards = f", {group.count} processes" if group.count > 1 else ""
            console.print(f"[bold]bake[/] {prompt_file} with {prompt_set.model} ({len(prompt_set.prompts)} prompt(s)"
                          f"{shards}) -> {out}")
        with bake_display(group.index, group.count) as display:
            outcomes = bake(prompt_set, out, device=device, dtype=dtype, force=force, progress=display.progress,
                            on_event=display.on_event, allow_pickle=allow_pickle, checked=preflight, group=group,
                            on_whole=display.on_whole, memory=memory or MemoryOptions())
    except UserError:
        if group.is_main:
            raise
        raise typer.Exit(2) from None  # process 1 prints the line (ShardStopped, or the same preflight error)
    if group.is_main:
        baked = sum(o.status == "baked" for o in outcomes)
        console.print(f"{baked} baked, {len(outcomes) - baked} cached")
    return prompt_set


@app.command("bake")
def bake_command(
    prompts: Path = typer.Argument(..., help="Prompt file (YAML), e.g. prompts/shapes.yaml."),
    model: Optional[str] = typer.Option(None, "--model", help="Model id or folder; overrides the file's 'model'."),
    device: str = typer.Option("auto", help="auto, cpu, cuda or mps."),
    dtype: str = typer.Option("auto", help="auto (fp16 on GPUs, fp32 on CPU), fp32, fp16 or bf16 (or float32, "
                              "float16, bfloat16); one the device cannot compute in is refused."),
    out: Path = typer.Option(GENERATED, help="Folder for assets and manifests."),
    only: list[str] = typer.Option([], "--only", help="Bake only this prompt id (repeatable)."),
    force: bool = typer.Option(False, "--force", help="Redo prompts whose assets are up to date."),
    daam: bool = typer.Option(True, "--daam/--no-daam", help="Word heat maps (DAAM) for models with cross-attention."),
    allow_pickle: bool = typer.Option(False, "--allow-pickle", help=ALLOW_PICKLE_HELP),
    processes: int = typer.Option(1, "--processes", min=1, help=PROCESSES_HELP),
    cpu_offload: bool = typer.Option(False, "--cpu-offload", help="diffusers' model CPU offload: the weights wait in "
                                     "CPU memory, each part moves to the GPU when it runs (needs a GPU)."),
    vae_slicing: bool = typer.Option(False, "--vae-slicing", help="Decode a batch of latents one image at a time."),
    vae_tiling: bool = typer.Option(False, "--vae-tiling", help="Decode images larger than the VAE's own size in "
                                    "overlapping tiles (large previews and finals)."),
) -> None:
    """Run every experiment of a prompt file once and write assets plus manifests."""
    from generator.bake.shard import launched_processes
    from generator.models.memory import MemoryOptions

    memory = MemoryOptions(cpu_offload=cpu_offload, vae_slicing=vae_slicing, vae_tiling=vae_tiling)
    if processes > 1 and launched_processes() <= 1:
        _launch_bake(prompts, model, device, dtype, out, only, force, daam, allow_pickle, processes, memory.names())
        return
    _bake(prompts, model, device, dtype, out, only, force, daam, allow_pickle, memory=memory)


def _launch_bake(prompts: Path, model: Optional[str], device: str, dtype: str, out: Path, only: list[str],
                 force: bool, daam: bool, allow_pickle: bool, processes: int, memory_flags: list[str]) -> None:
    """Run the bake as ``processes`` processes (a held lock is refused here; the other checks run in them)."""
    from generator.bake.lock import check_unlocked
    from generator.cli.launch import launch

    check_unlocked(out)
    arguments = [str(prompts), "--device", device, "--dtype", dtype, "--out", str(out)]
    arguments += ["--model", model] if model else []
    arguments += [part for prompt_id in only for part in ("--only", prompt_id)]
    arguments += ["--force"] * force + ["--no-daam"] * (not daam) + ["--allow-pickle"] * allow_pickle + memory_flags
    launch(arguments, processes, device, out)


@app.command("render")
def render_command(
    manifest: Path = typer.Option(GENERATED / "index.json", help="The index.json written by bake."),
    out: Path = typer.Option(Path("site"), help="MkDocs docs folder to write pages into."),
) -> None:
    """Render pages and embeds from baked manifests (no model, no torch); report how many judged figures agree."""
    result = _render(manifest, out)
    console.print(result.quality.summary(), markup=False, highlight=False, soft_wrap=True)  # a report here; build fails on it


def _render(manifest: Path, out: Path) -> object:
    """Render the pages of a baked index and say what was written; returns the RenderResult."""
    from generator.render import render_site

    if not manifest.is_file():
        raise UserError(f"{manifest} does not exist; run 'diffatlas bake PROMPTS.yaml' first")
    result = render_site(manifest.parent, out)
    console.print(
        f"rendered {len(result.pages)} page(s), {len(result.embeds)} embed(s) "
        f"({len(result.changed)} changed, {len(result.removed)} removed)"
    )
    return result


@app.command("build")
def build_command(
    prompts: list[Path] = typer.Argument(None, help="Prompt files (default: shapes, course and digits sets)."),
    model: Optional[str] = typer.Option(None, "--model", help="Model id or folder for every file."),
    device: str = typer.Option("auto", help="auto, cpu, cuda or mps."),
    dtype: str = typer.Option("auto", help="auto, fp32, fp16 or bf16."),
    force: bool = typer.Option(False, "--force", help="Redo prompts whose assets are up to date."),
    allow_pickle: bool = typer.Option(False, "--allow-pickle", help=ALLOW_PICKLE_HELP),
) -> None:
    """Bake, render and build the static site into build/site (mkdocs build --strict).

    Ends with how many judged figures agree with their prompt, and fails (after writing everything) when one
    disagrees without its prompt file saying 'expect: fail'.
    """
    from generator.bake.manifest import merge_index
    from generator.bake.store import write_json

    files = prompts or [p for p in DEFAULT_PROMPTS if p.exists()]
    if not files:
        raise UserError("no prompt file given and none of the defaults exist: " + ", ".join(map(str, DEFAULT_PROMPTS)))
    # every file is checked before the first one bakes: a mistake in the last is not found an hour in
    checked = [_checked_set(f, model, device, dtype, [], True, allow_pickle) for f in files]
    prompt_sets = [_bake(f, model, device, dtype, GENERATED, [], force, allow_pickle=allow_pickle, checked=c)
                   for f, c in zip(files, checked)]
    write_json(GENERATED / "index.json", merge_index(GENERATED, prompt_sets))
    quality = _render(GENERATED / "index.json", Path("site")).quality
    _mkdocs("build", "--strict")
    console.print("site ready: build/site/index.html (judged figures: site/generated/quality.json)")
    console.print(quality.summary(), markup=False, highlight=False, soft_wrap=True)
    failure = quality.failure()
    if failure:  # after everything is written, so the site can be looked at
        raise UserError(failure)


@app.command("serve")
def serve_command(address: str = typer.Option("127.0.0.1:8000", help="Where to serve the live preview.")) -> None:
    """Live preview of the site (mkdocs serve) from what was last rendered."""
    _mkdocs("serve", "--dev-addr", address)


def _mkdocs(*arguments: str) -> None:
    if not Path("mkdocs.yml").exists():
        raise UserError("no mkdocs.yml here; run diffatlas from the project's root folder")
    environment = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    completed = subprocess.run([sys.executable, "-m", "mkdocs", *arguments], check=False, env=environment)
    if completed.returncode:
        raise UserError(f"mkdocs {arguments[0]} failed (exit {completed.returncode}); see its output above")


@app.command("models")
def models_command() -> None:
    """List the built-in model ids and what each supports."""
    from rich.table import Table

    from generator.models.registry import MODELS

    table = Table("id", "what it is", "supports")
    for entry in MODELS.values():
        table.add_row(entry.id, entry.summary, entry.supports)
    table.add_row("PATH or hub id", "Stable Diffusion 1.x/2.x/XL folder or local HF cache entry", "text, DAAM, latent")
    console.print(table)
