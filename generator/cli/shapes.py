"""CLI stage: ``diffatlas train shapes`` and ``diffatlas eval shapes`` (the built-in text-to-image model).

Parsing and progress bars only; the work is done by ``generator.builtin.shapes`` (training) and
``generator.evaluate`` (measuring). torch is imported inside
the commands so ``diffatlas --help`` stays fast.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Optional

import typer

from generator.cli.app import eval_app, train_app
from generator.cli.progress import console, training_progress
from generator.devices import resolve_device
from generator.errors import UserError
from generator.files import write_json

SHIPPED = Path(__file__).resolve().parent.parent / "weights" / "shapes"


@train_app.command("shapes")
def train_shapes_command(
    steps: int = typer.Option(20000, help="Optimizer steps in total (a resumed run continues up to this)."),
    batch: int = typer.Option(32, help="Batch size."),
    device: str = typer.Option("auto", help="auto, cpu or cuda[:N]."),
    threads: Optional[int] = typer.Option(None, help="CPU threads for torch (default: torch's choice)."),
    out: Path = typer.Option(Path("build/train/shapes"), help="Run folder: checkpoint.pt, loss.json, config.json."),
    resume: bool = typer.Option(False, help="Continue from OUT/checkpoint.pt (identical to an uninterrupted run)."),
    seed: int = typer.Option(0, help="Seed for initialisation, the data stream and noise."),
    bf16: bool = typer.Option(True, help="bfloat16 autocast for matmuls and convolutions."),
    text_encoder: str = typer.Option("clip", help="clip (causal, CLIP's) or t5 (bidirectional, padding masked)."),
    p2_gamma: Optional[float] = typer.Option(None, help="Weigh the loss by 1/(1+SNR)^GAMMA (P2): more weight on the "
                                             "noisy steps that decide layout. Off by default."),
    coordinates: bool = typer.Option(False, help="Give the UNet each pixel's x and y as two extra input channels."),
    noisy_share: float = typer.Option(0.0, help="Share of each batch drawn from the noisiest 30% of timesteps, "
                                      "where the layout is decided (0: uniform timesteps)."),
    prediction: str = typer.Option("epsilon", help="What the UNet predicts: epsilon (the noise) or v "
                                   "(Salimans & Ho's velocity, which keeps weight on the noisiest steps)."),
    init_from: Optional[Path] = typer.Option(None, help="Start from this run folder's EMA weights (or exported "
                                             "weights such as generator/weights/shapes): the UNet (same "
                                             "architecture), and the text encoder when it is the same kind."),
    text: Optional[Path] = typer.Option(None, help="Train the UNet on this taught text encoder, kept frozen: a "
                                        "'train shapes-latent --stage text' run or a folder with text_encoder/ "
                                        "(e.g. generator/weights/shapes-latent). Needs --text-encoder t5."),
    layout_weights: Optional[str] = typer.Option(None, help="How often each scene layout is drawn, e.g. "
                                                 "'single=0.2,pair=0.25,relation=0.4,count=0.1,triple=0.05' "
                                                 "(default: the world's 0.3/0.15/0.3/0.15/0.1)."),
    ship_to: Optional[Path] = typer.Option(None, help="After training, export the EMA weights here "
                                           "(maintainers: generator/weights/shapes)."),
    export_only: bool = typer.Option(False, help="Do not train; export OUT's latest checkpoint to --ship-to."),
) -> None:
    """Train the 'shapes' text-to-image model (text encoder + pixel UNet) from scratch."""
    import torch

    from generator.builtin.shapes.export import export
    from generator.builtin.shapes.model import PREDICTIONS, TEXT_ENCODERS, ShapesModelConfig
    from generator.builtin.shapes.train import TrainConfig, train

    if threads:
        torch.set_num_threads(threads)
    if text is None and init_from is not None and _taught_text_encoder(init_from):
        text = init_from  # continuing exported weights whose UNet learned on a frozen taught encoder: keep that encoder
    # The canonical command of this run (what reproduces it), not sys.argv: entry points and test runners differ.
    command = (f"diffatlas train shapes --steps {steps} --batch {batch} --seed {seed} --device {device}"
               f"{f' --threads {threads}' if threads else ''}{'' if bf16 else ' --no-bf16'} --out {shlex.quote(str(out))}"
               f"{f' --text-encoder {text_encoder}' if text_encoder != 'clip' else ''}"
               f"{' --coordinates' if coordinates else ''}{f' --p2-gamma {p2_gamma:g}' if p2_gamma else ''}"
               f"{f' --prediction {prediction}' if prediction != 'epsilon' else ''}"
               f"{f' --noisy-share {noisy_share:g}' if noisy_share else ''}"
               f"{f' --init-from {shlex.quote(str(init_from))}' if init_from else ''}"
               f"{f' --text {shlex.quote(str(text))}' if text else ''}"
               f"{f' --layout-weights {layout_weights}' if layout_weights else ''}{' --resume' if resume else ''}")
    if export_only:
        if ship_to is None:
            raise UserError("--export-only needs --ship-to")
        trained_with = _train_command_of(out)  # the run's own threads, not this export's
        info = export(out, ship_to, command=trained_with or command,
                      threads=_threads_of(trained_with) if trained_with else threads)
        console.print(f"exported step {info['steps']} (loss {info['final_loss']}) to {ship_to}")
        return
    if steps < 1 or batch < 1:
        raise UserError("--steps and --batch must be positive")
    if text_encoder not in TEXT_ENCODERS:
        raise UserError(f"--text-encoder must be one of {', '.join(TEXT_ENCODERS)}")
    if not 0 <= noisy_share <= 1:
        raise UserError("--noisy-share must be between 0 and 1")
    if prediction not in PREDICTIONS:
        raise UserError(f"--prediction must be one of {', '.join(PREDICTIONS)}")
    if text is not None and not ((text / "checkpoint.pt").exists() or (text / "text_encoder").is_dir()):
        raise UserError(f"--text: {text} holds neither a text run (checkpoint.pt) nor a text_encoder/ folder")
    config = TrainConfig(steps=steps, batch=batch, seed=seed, bf16=bf16,
                         init_from=str(init_from) if init_from else None, text_from=str(text) if text else None,
                         p2_gamma=p2_gamma, noisy_share=noisy_share,
                         layout_weights=_layouts(layout_weights) if layout_weights else None,
                         model=ShapesModelConfig(text_encoder=text_encoder, coordinates=coordinates,
                                                 prediction=PREDICTIONS[prediction]))
    out.mkdir(parents=True, exist_ok=True)
    if not (out / "command.txt").exists():  # the command that started the run; resumes append nothing
        (out / "command.txt").write_text(command + "\n")
    with training_progress("train shapes") as report:
        result = train(config, out, device=str(resolve_device(device)), resume=resume, progress=report)
    console.print(f"step {result.step}, loss {result.final_loss}, {result.wall_seconds:.0f} s; checkpoint in {out}")
    if ship_to is not None:
        info = export(out, ship_to, command=command, threads=threads)
        console.print(f"exported step {info['steps']} to {ship_to}")


def _taught_text_encoder(folder: Path) -> bool:
    """Whether exported weights (``--ship-to``) were trained on a frozen taught text encoder (``--text``)."""
    record = folder / "training.json"
    return (folder / "text_encoder").is_dir() and record.is_file() and "text_encoder" in json.loads(record.read_text())


def _layouts(text: str) -> dict[str, float]:
    """'single=0.2,pair=0.3,...' -> {layout: weight}; every layout of the world may appear, none other."""
    from generator.builtin.shapes.world import LAYOUT_WEIGHTS

    weights: dict[str, float] = {}
    for item in text.split(","):
        name, _, value = item.partition("=")
        try:
            weights[name.strip()] = float(value)
        except ValueError:
            raise UserError(f"--layout-weights: {item!r} is not LAYOUT=NUMBER") from None
    unknown = sorted(set(weights) - set(LAYOUT_WEIGHTS))
    if unknown or not any(w > 0 for w in weights.values()) or any(w < 0 for w in weights.values()):
        raise UserError(f"--layout-weights takes non-negative weights of {', '.join(LAYOUT_WEIGHTS)} (got {text!r})")
    return weights


def _train_command_of(out: Path) -> str | None:
    """The command that trained the run in ``out`` (recorded when it started), if known."""
    path = out / "command.txt"
    return path.read_text().strip() if path.exists() else None


def _threads_of(command: str) -> int | None:
    """The ``--threads N`` of a recorded command (None when it let torch choose)."""
    words = shlex.split(command)
    return int(words[words.index("--threads") + 1]) if "--threads" in words[:-1] else None


@eval_app.command("shapes")
def eval_shapes_command(
    n: int = typer.Option(200, help="Generated images in all: half for one-object, half for two-object prompts."),
    device: str = typer.Option("auto", help="auto, cpu or cuda[:N]."),
    threads: Optional[int] = typer.Option(None, help="CPU threads for torch (default: torch's choice)."),
    weights: Path = typer.Option(SHIPPED, help="Folder with the model (save_pretrained layout)."),
    steps: Optional[int] = typer.Option(None, help="Sampling steps (default: the model's measured defaults.json)."),
    scheduler: Optional[str] = typer.Option(None, help="Sampler (ddim, ddpm, euler-ancestral, ...; default: the model's)."),
    guidance: Optional[float] = typer.Option(None, help="Classifier-free guidance scale (default: the model's)."),
    seed: int = typer.Option(1234, help="Seed of the held-out captions and the noise."),
    daam: bool = typer.Option(True, help="Also measure DAAM masks against the checker's masks (mIoU, tau sweep)."),
    sweep: bool = typer.Option(False, help="First measure every scheduler x steps (10, 25, 50) at the current "
                               "guidance, then the best of them x guidance (1, 2, 3, 5, 7.5), on --sweep-n other "
                               "held-out captions; write the best as WEIGHTS/defaults.json (the model's defaults "
                               "everywhere) and evaluate with it."),
    sweep_n: int = typer.Option(60, help="Images per sweep cell (half one-object, half two-object captions)."),
    out: Optional[Path] = typer.Option(None, help="Where to write the JSON report (default: WEIGHTS/eval.json, "
                                       "i.e. generator/weights/shapes/eval.json for the shipped model: the report "
                                       "the site's page 'How faithful is DAAM?' is baked from; the weights' README.md "
                                       "gets its '## Measured' section renewed)."),
) -> None:
    """Prompt fidelity of the 'shapes' model (rule-based checker) and DAAM faithfulness (mIoU vs its masks).

    The report also keeps the best and worst DAAM examples (tiny base64 PNGs). By default it is written next to
    the weights, where `faithfulness:` in prompts/shapes.yaml reads it; then `diffatlas build` shows it.
    """
    import torch

    from generator.evaluate.shapes_report import evaluate

    if threads:
        torch.set_num_threads(threads)
    if n < 2:
        raise UserError("--n must be at least 2 (one one-object and one two-object prompt)")
    if not (weights / "unet").exists():
        raise UserError(f"no shapes model in {weights}; train one with `diffatlas train shapes --ship-to {weights}`")
    out = out if out is not None else weights / "eval.json"
    if sweep:
        _sweep_defaults(weights, str(resolve_device(device)), sweep_n, threads)
    with training_progress("eval shapes") as report:
        result = evaluate(weights, n=n, device=str(resolve_device(device)), steps=steps, scheduler=scheduler, guidance=guidance,
                          seed=seed, daam=daam, progress=report)
    write_json(out, result)
    readme = weights / "README.md"
    if out == weights / "eval.json" and readme.exists():  # the report of the weights' own folder: renew its numbers
        from generator.evaluate.shapes_report import measured_section, replace_section

        readme.write_text(replace_section(readme.read_text(), measured_section(result)))
    summary, claims = result["summary"], result["claims"]
    line = (f"one-object scene right {claims['one_object']['scene_right']['rate']:.1%}, two-object binding "
            f"{claims['two_object']['binding']['rate']:.1%}, relations {claims['two_object']['relation']['rate']:.1%}; "
            f"attributes right {summary['one_object']:.1%} / {summary['two_object']:.1%}")
    if result["daam"] and result["daam"]["best_miou"] is not None:
        d = result["daam"]
        line += (f"; DAAM mIoU {d['best_miou']:.3f} at tau {d['best_tau']} (whole image {d['baselines']['whole_image']:.3f},"
                 f" centre box {d['baselines']['centre_box']:.3f})")
    console.print(f"{line}; {out}")


SWEEP_STEPS = (10, 25, 50)
SWEEP_GUIDANCES = (1.0, 2.0, 3.0, 5.0, 7.5)


def _sweep_defaults(weights: Path, device: str, n: int, threads: Optional[int]) -> None:
    """Measure the sampler grid and record the best cell as the model's defaults (WEIGHTS/defaults.json)."""
    from generator.builtin.defaults import write_defaults
    from generator.evaluate.sampler_sweep import staged_sweep
    from generator.evaluate.shapes_report import shapes_world_model
    from generator.evaluate.shapes_sweep import CLAIM_TARGETS, SWEEP_SEED, shapes_measure
    from generator.models.schedulers import SCHEDULERS

    adapter = shapes_world_model(weights, device)  # the pixel model's folder or the latent model's SD folder
    with training_progress("sweep samplers") as report:
        result = staged_sweep(list(SCHEDULERS), SWEEP_STEPS, SWEEP_GUIDANCES, adapter.default_guidance,
                              shapes_measure(adapter, n), progress=report)
    from generator.builtin.shipped import shipped_weights
    from generator.spec.daam_findings import shown_path

    shown = "" if weights.resolve() == shipped_weights("shapes").resolve() else f" --weights {shown_path(str(weights))}"
    command = f"diffatlas eval shapes{shown} --sweep --sweep-n {n}" + (f" --threads {threads}" if threads else "")
    scored = [f"{group}.{rate}" for group, rate in CLAIM_TARGETS]
    chosen = write_defaults(weights, result, command, {"n": n, "seed": SWEEP_SEED, "scored": scored})
    console.print(f"measured defaults: {chosen['scheduler']}, {chosen['steps']} steps, guidance {chosen['guidance']:g} "
                  f"(score {chosen['measured']['score']:.3f}); {weights / 'defaults.json'}")
