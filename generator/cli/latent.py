"""CLI stage: ``diffatlas train shapes-latent`` (the built-in latent model: autoencoder, then UNet).

Parsing and progress only; the work is done by ``generator.builtin.latent``. torch is imported inside the
command so ``diffatlas --help`` stays fast.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Optional

import typer

from generator.cli.app import train_app
from generator.cli.progress import console, training_progress
from generator.devices import resolve_device
from generator.errors import UserError

STAGES = ("vae", "unet")


@train_app.command("shapes-latent")
def train_latent_command(
    stage: str = typer.Option(..., help="vae (the autoencoder, first) or unet (the denoiser on its latents)."),
    steps: int = typer.Option(4000, help="Optimizer steps in total (a resumed run continues up to this)."),
    batch: int = typer.Option(16, help="Batch size."),
    device: str = typer.Option("auto", help="auto, cpu or cuda[:N]."),
    threads: Optional[int] = typer.Option(None, help="CPU threads for torch (default: torch's choice)."),
    out: Optional[Path] = typer.Option(None, help="Run folder (default build/train/shapes-latent-STAGE)."),
    vae: Path = typer.Option(Path("build/train/shapes-latent-vae"),
                             help="unet stage: the VAE run (or exported folder) whose latents it learns."),
    resume: bool = typer.Option(False, help="Continue from OUT/checkpoint.pt (identical to an uninterrupted run)."),
    seed: int = typer.Option(0, help="Seed for initialisation, the data stream and noise."),
    ship_to: Optional[Path] = typer.Option(None, help="After training, export the Stable Diffusion folder here "
                                           "(unet stage; maintainers: generator/weights/shapes-latent)."),
) -> None:
    """Train the built-in latent model of the shapes world, one stage at a time."""
    import torch

    if stage not in STAGES:
        raise UserError(f"--stage must be one of {', '.join(STAGES)}")
    if steps < 1 or batch < 1:
        raise UserError("--steps and --batch must be positive")
    if threads:
        torch.set_num_threads(threads)
    out = out or Path(f"build/train/shapes-latent-{stage}")
    command = (f"diffatlas train shapes-latent --stage {stage} --steps {steps} --batch {batch} --seed {seed} "
               f"--device {device}{f' --threads {threads}' if threads else ''} --out {shlex.quote(str(out))}"
               f"{f' --vae {shlex.quote(str(vae))}' if stage == 'unet' else ''}")
    out.mkdir(parents=True, exist_ok=True)
    if not (out / "command.txt").exists():  # the command that started the run; resumes append nothing
        (out / "command.txt").write_text(command + "\n")
    torch_device = str(resolve_device(device))
    with training_progress(f"train shapes-latent {stage}") as report:
        if stage == "vae":
            from generator.builtin.latent.vae import VaeTrainConfig, train_vae

            result = train_vae(VaeTrainConfig(steps=steps, batch=batch, seed=seed), out, torch_device, resume, report)
        else:
            from generator.builtin.latent.unet import UnetTrainConfig, train_unet

            result = train_unet(UnetTrainConfig(steps=steps, batch=batch, seed=seed, vae=str(vae)), out,
                                torch_device, resume, report)
    console.print(f"step {result.step}, loss {result.final_loss}, {result.wall_seconds:.0f} s; checkpoint in {out}")
    if ship_to is not None:
        from generator.builtin.latent.export import export

        export(vae_run=vae if stage == "unet" else out, unet_run=out if stage == "unet" else None, folder=ship_to)
        console.print(f"exported to {ship_to}")
