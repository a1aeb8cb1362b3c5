"""CLI stage: `diffatlas daam "prompt"`: generate one image and write a DAAM overlay per word."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

import typer

from generator.cli.app import app
from generator.cli.progress import console
from generator.errors import UserError


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "word"


@app.command("daam")
def daam_command(
    prompt: str = typer.Argument(..., help="The prompt, e.g. \"a red circle above a blue square\"."),
    model: str = typer.Option("embedded:shapes", "--model", help="Model id or diffusers folder with cross-attention."),
    out: Path = typer.Option(Path("daam-out"), "--out", help="Folder for image.png and one overlay per word."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Denoising steps (default: the model's)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the start noise."),
    guidance: Optional[float] = typer.Option(None, "--guidance", help="Classifier-free guidance scale (default: the model's)."),
    tau: Optional[float] = typer.Option(None, "--tau", help="Also darken outside the mask map >= tau * max (0..1; paper: 0.4)."),
    bins: int = typer.Option(10, "--bins", help="Timestep bins recorded."),
    device: str = typer.Option("auto", help="auto, cpu, cuda or mps."),
    dtype: str = typer.Option("auto", help="auto, fp32, fp16 or bf16."),
    allow_pickle: bool = typer.Option(False, "--allow-pickle", help="Let a model folder load pickled weights "
                                      "(.bin, .ckpt, .pt, .pth), which can run code; only for folders you trust."),
) -> None:
    """Generate an image and write where each word of the prompt acts (DAAM heat-map overlays)."""
    if tau is not None and not 0 <= tau <= 1:
        raise UserError(f"--tau must be between 0 and 1, got {tau}")
    if steps is not None and steps < 1:
        raise UserError(f"--steps must be >= 1, got {steps}")
    if not prompt.strip():
        raise UserError("the prompt is empty")
    from generator.cli.progress import quiet_libraries
    from generator.daam import trace
    from generator.daam.overlay import overlay
    from generator.models.registry import check_weights, load_model, model_limits

    problem = model_limits(model).check_prompt(prompt)  # before the model loads: one line, nothing drawn
    if problem:
        raise UserError(f"the prompt is {problem}" if problem.startswith("longer") else f"the prompt {problem}")
    check_weights(model, allow_pickle)
    quiet_libraries()
    adapter = load_model(model, device=device, dtype=dtype, allow_pickle=allow_pickle)
    if not adapter.capabilities.cross_attention:
        raise UserError(f"{adapter.id} has no cross-attention over text tokens, so DAAM has nothing to show")
    console.print(f"[bold]daam[/] {prompt!r} with {adapter.id} ({adapter.weights_format} weights)")
    try:
        with trace(adapter, timestep_bins=bins) as traced:
            image = adapter.generate(prompt, seed=seed, steps=steps, guidance=guidance)
    except ValueError as error:
        raise UserError(str(error)) from None
    out.mkdir(parents=True, exist_ok=True)
    image.save(out / "image.png")
    written = [out / "image.png"]
    for word in traced.prompt_tokens().words:
        if word.is_punctuation or not word.positions:
            continue
        suffix = f"-{word.word.occurrence + 1}" if word.word.occurrence else ""
        path = out / f"{word.word.index:02d}-{_slug(word.word.text)}{suffix}.png"
        heat = traced.word_map(word.word.index)
        overlay(image, heat, tau=tau).save(path)
        written.append(path)
    for path in written:
        console.print(f"  {path}")
