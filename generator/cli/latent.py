"""CLI stage: ``diffatlas train shapes-latent`` (the built-in latent model: autoencoder, then UNet).

Parsing and progress only; the work is done by ``generator.builtin.latent``. torch is imported inside the
command so ``diffatlas --help`` stays fast.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Optional

import typer

from generator.cli.app import eval_app, train_app
from generator.cli.progress import console, training_progress
from generator.devices import resolve_device
from generator.errors import UserError

STAGES = ("vae", "decoder", "text", "unet")


@train_app.command("shapes-latent")
def train_latent_command(
    stage: str = typer.Option(..., help="vae (the autoencoder, first), unet (the denoiser on its latents), "
                              "decoder (fine-tune the VAE's decoder alone: the latent space and the UNet stay valid), "
                              "or text (teach the text encoder where each named object goes, before a unet run)."),
    steps: int = typer.Option(4000, help="Optimizer steps in total (a resumed run continues up to this)."),
    batch: int = typer.Option(16, help="Batch size."),
    cooldown: int = typer.Option(0, help="Let the learning rate fall linearly to zero over the last N steps "
                                 "(0: constant to the end). A resumed run may add or change it."),
    device: str = typer.Option("auto", help="auto, cpu or cuda[:N]."),
    threads: Optional[int] = typer.Option(None, help="CPU threads for torch (default: torch's choice)."),
    out: Optional[Path] = typer.Option(None, help="Run folder (default build/train/shapes-latent-STAGE)."),
    vae: Path = typer.Option(Path("build/train/shapes-latent-vae"),
                             help="unet stage: the VAE run whose latents it learns; decoder stage: the VAE run it "
                             "starts from; --ship-to from the unet stage: the VAE (or decoder) run to export."),
    init_from: Optional[Path] = typer.Option(None, help="unet stage: start from this exported folder's unet/ (e.g. "
                                             "generator/weights/shapes-latent, with --vae the same folder) and, "
                                             "without --text, its text encoder; text stage: its text_encoder/."),
    text: Optional[Path] = typer.Option(None, help="unet stage: the text encoder to learn on, a text-stage run or a "
                                        "folder (default: --init-from's, else the shapes model's)."),
    grounding: float = typer.Option(0.0, help="unet stage: weight of the attention grounding loss, which teaches each "
                                    "word's cross-attention the mask of the object it describes (TokenCompose; "
                                    "0: the diffusion loss alone)."),
    unet: Path = typer.Option(Path("build/train/shapes-latent-unet"),
                              help="--ship-to from the vae or decoder stage: the UNet run to export with it."),
    resume: bool = typer.Option(False, help="Continue from OUT/checkpoint.pt (identical to an uninterrupted run)."),
    seed: int = typer.Option(0, help="Seed for initialisation, the data stream and noise."),
    ship_to: Optional[Path] = typer.Option(None, help="After training, export the Stable Diffusion folder here "
                                           "(maintainers: generator/weights/shapes-latent), with the VAE measured."),
    export_only: bool = typer.Option(False, help="Do not train; export the runs' latest checkpoints to --ship-to."),
) -> None:
    """Train the built-in latent model of the shapes world, one stage at a time."""
    import torch

    if stage not in STAGES:
        raise UserError(f"--stage must be one of {', '.join(STAGES)}")
    if steps < 1 or batch < 1:
        raise UserError("--steps and --batch must be positive")
    if not 0 <= cooldown <= steps:
        raise UserError("--cooldown must be between 0 and --steps")
    if grounding < 0 or (grounding and stage != "unet"):
        raise UserError("--grounding is a non-negative weight of the unet stage")
    if threads:
        torch.set_num_threads(threads)
    out = out or Path(f"build/train/shapes-latent-{stage}")
    command = (f"diffatlas train shapes-latent --stage {stage} --steps {steps} --batch {batch} --seed {seed}"
               f"{f' --cooldown {cooldown}' if cooldown else ''}"
               f" --device {device}{f' --threads {threads}' if threads else ''} --out {shlex.quote(str(out))}"
               f"{f' --vae {shlex.quote(str(vae))}' if stage not in ('vae', 'text') else ''}"
               f"{f' --init-from {shlex.quote(str(init_from))}' if init_from else ''}"
               f"{f' --text {shlex.quote(str(text))}' if text else ''}"
               f"{f' --grounding {grounding:g}' if grounding else ''}")
    if stage == "text" and ship_to is not None:
        raise UserError("a text run ships with the UNet trained on it: --ship-to from --stage unet --text RUN")
    if export_only:
        if ship_to is None:
            raise UserError("--export-only needs --ship-to")
        _ship(vae if stage == "unet" else out, out if stage == "unet" else unet, ship_to)
        return
    out.mkdir(parents=True, exist_ok=True)
    # the command that reruns the run uninterrupted: a resume may only change --steps and --cooldown (and
    # --threads), so it is the command as last given
    (out / "command.txt").write_text(command + "\n")
    torch_device = str(resolve_device(device))
    with training_progress(f"train shapes-latent {stage}") as report:
        if stage in ("vae", "decoder"):
            from generator.builtin.latent.vae import VaeTrainConfig, train_vae

            config = VaeTrainConfig(steps=steps, batch=batch, seed=seed, cooldown_steps=cooldown)
            if stage == "decoder":
                config = VaeTrainConfig(steps=steps, batch=batch, seed=seed, cooldown_steps=cooldown,
                                        init_from=str(vae), decoder_only=True, warmup_steps=50, learning_rate=2e-4)
            result = train_vae(config, out, torch_device, resume, report)
        elif stage == "text":
            from generator.builtin.latent.text import TextTrainConfig, train_text

            config = TextTrainConfig(steps=steps, batch=batch, seed=seed, cooldown_steps=cooldown,
                                     init_from=str(init_from) if init_from else None)
            result = train_text(config, out, torch_device, resume, report)
        else:
            from generator.builtin.latent.unet import UnetTrainConfig, train_unet

            config = UnetTrainConfig(steps=steps, batch=batch, seed=seed, cooldown_steps=cooldown, vae=str(vae),
                                     init_from=str(init_from) if init_from else None,
                                     text_encoder=str(text) if text else None, grounding=grounding)
            result = train_unet(config, out, torch_device, resume, report)
    console.print(f"step {result.step}, loss {result.final_loss}, {result.wall_seconds:.0f} s; checkpoint in {out}")
    if ship_to is not None:
        _ship(vae if stage == "unet" else out, out if stage == "unet" else unet, ship_to)


def _ship(vae_run: Path, unet_run: Path, folder: Path, n: int = 200) -> None:
    """Export the runs as a Stable Diffusion folder and record the autoencoder's measured numbers with it."""
    import json

    import torch
    from diffusers import AutoencoderKL

    from generator.builtin.latent.export import export
    from generator.evaluate.vae_report import measure_vae
    from generator.files import write_json

    export(vae_run=vae_run, unet_run=unet_run, folder=folder)
    vae = AutoencoderKL.from_pretrained(folder / "vae", torch_dtype=torch.float32).eval()
    measured = measure_vae(vae, int(vae.config.sample_size), n)
    record = json.loads((folder / "training.json").read_text())
    record["vae"]["eval"] = {**measured, "command": f"diffatlas eval vae {folder} --n {n}"}
    write_json(folder / "training.json", record)
    console.print(f"exported to {folder}; autoencoder: {measured}")


@eval_app.command("vae")
def eval_vae_command(
    weights: Path = typer.Argument(Path("generator/weights/shapes-latent"),
                                   help="A Stable Diffusion folder (its vae/) or a VAE training run folder."),
    n: int = typer.Option(200, help="Held-out scenes."),
    threads: Optional[int] = typer.Option(None, help="CPU threads for torch (default: torch's choice)."),
) -> None:
    """Measure an autoencoder of the shapes world: round-trip PSNR, checker verdicts unchanged, latent std."""
    import json

    import torch

    from generator.evaluate.vae_report import measure_vae

    if threads:
        torch.set_num_threads(threads)
    if (weights / "checkpoint.pt").exists():
        from generator.builtin.latent.unet import load_vae_run

        vae, config, _ = load_vae_run(weights)
        resolution = config.resolution
    elif (weights / "vae" / "config.json").exists():
        from diffusers import AutoencoderKL

        vae = AutoencoderKL.from_pretrained(weights / "vae", torch_dtype=torch.float32).eval()
        resolution = int(vae.config.sample_size)
    else:
        raise UserError(f"{weights} holds neither a VAE run (checkpoint.pt) nor a Stable Diffusion folder (vae/)")
    console.print(json.dumps(measure_vae(vae, resolution, n), indent=1))


@eval_app.command("text-order")
def eval_text_order_command(
    source: Optional[Path] = typer.Argument(None, help="A --stage text run, or a folder with text_encoder/ and "
                                            "tokenizer/ (default: the shipped shapes model's encoder)."),
    n: int = typer.Option(200, help="Held-out relation captions."),
    threads: Optional[int] = typer.Option(None, help="CPU threads for torch (default: torch's choice)."),
) -> None:
    """Measure whether a text encoder tells which named object goes where: the swap cosine of a colour word
    (1.0: order-blind) and, for a text run, its layout readout's relation direction (chance 0.5)."""
    import json

    import torch

    from generator.evaluate.text_order import measure_order

    if threads:
        torch.set_num_threads(threads)
    if source is not None and not ((source / "checkpoint.pt").exists() or (source / "text_encoder").is_dir()):
        raise UserError(f"{source} holds neither a text run (checkpoint.pt) nor a text_encoder/ folder")
    console.print(json.dumps(measure_order(str(source) if source else None, n).to_json(), indent=1))
