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
from generator.cli.progress import console, progress_bar, quiet_libraries
from generator.errors import UserError

GENERATED = Path("site/generated")
ALLOW_PICKLE_HELP = ("Let a model folder load pickled weights (.bin, .ckpt, .pt, .pth), which can run code; "
                     "only for folders you trust. Safetensors are used wherever a folder has them.")
# The default site: the built-in shapes model's gallery, then the chapters that have prompt files.
DEFAULT_PROMPTS = (Path("prompts/shapes.yaml"), Path("prompts/course.yaml"), Path("prompts/digits.yaml"))


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
    return prompt_set, preflight(prompt_set, device=device, dtype=dtype, allow_pickle=allow_pickle)


def _bake(
    prompt_file: Path, model: Optional[str], device: str, dtype: str, out: Path, only: list[str], force: bool,
    daam: bool = True, allow_pickle: bool = False, checked: tuple[object, object] | None = None,
) -> object:
    """Bake one prompt file: every check first (a mistake is one line, nothing drawn), then header and progress."""
    from generator.bake.runner import bake
    from generator.bake.store import AssetStore

    prompt_set, preflight = checked or _checked_set(prompt_file, model, device, dtype, only, daam, allow_pickle)
    AssetStore(out).check_writable()
    quiet_libraries()
    console.print(f"[bold]bake[/] {prompt_file} with {prompt_set.model} ({len(prompt_set.prompts)} prompt(s)) -> {out}")
    with progress_bar("denoising") as progress:
        outcomes = bake(prompt_set, out, device=device, dtype=dtype, force=force, progress=progress,
                        on_event=console.print, allow_pickle=allow_pickle, checked=preflight)
    baked = sum(o.status == "baked" for o in outcomes)
    console.print(f"{baked} baked, {len(outcomes) - baked} cached")
    return prompt_set


@app.command("bake")
def bake_command(
    prompts: Path = typer.Argument(..., help="Prompt file (YAML), e.g. prompts/shapes.yaml."),
    model: Optional[str] = typer.Option(None, "--model", help="Model id or folder; overrides the file's 'model'."),
    device: str = typer.Option("auto", help="auto, cpu, cuda or mps."),
    dtype: str = typer.Option("auto", help="auto (fp16 on GPUs, fp32 on CPU), fp32, fp16 or bf16."),
    out: Path = typer.Option(GENERATED, help="Folder for assets and manifests."),
    only: list[str] = typer.Option([], "--only", help="Bake only this prompt id (repeatable)."),
    force: bool = typer.Option(False, "--force", help="Redo prompts whose assets are up to date."),
    daam: bool = typer.Option(True, "--daam/--no-daam", help="Word heat maps (DAAM) for models with cross-attention."),
    allow_pickle: bool = typer.Option(False, "--allow-pickle", help=ALLOW_PICKLE_HELP),
) -> None:
    """Run every experiment of a prompt file once and write assets plus manifests."""
    _bake(prompts, model, device, dtype, out, only, force, daam, allow_pickle)


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
