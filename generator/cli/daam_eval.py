"""CLI stage: ``diffatlas eval daam``: where DAAM's maps are faithful and the paper's analyses (issue 19).

Parsing and progress only; the measuring is ``generator.evaluate.daam_report``. torch is imported inside the
command so ``diffatlas --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from generator.cli.app import eval_app
from generator.cli.progress import console, training_progress
from generator.devices import resolve_device
from generator.errors import UserError
from generator.evaluate.daam_identity import model_identity
from generator.files import write_json
from generator.spec.daam_findings import shown_path

SHIPPED = Path(__file__).resolve().parent.parent / "weights" / "shapes"
REPORTS = Path("prompts/reports")  # default outputs: daam-<model>.json, daam-<model>-value-norm.json, daam-edits-<model>.json


@eval_app.command("daam")
def eval_daam_command(
    n: int = typer.Option(48, help="Captions per set (calibration and test each; one image per caption)."),
    bins: int = typer.Option(5, help="Timestep bins the maps are kept apart in (bin 0: the noisiest steps)."),
    weights: Path = typer.Option(SHIPPED, help="Folder of a shapes model (default: the shipped one)."),
    steps: Optional[int] = typer.Option(None, help="Sampling steps (default: the model's measured defaults)."),
    scheduler: Optional[str] = typer.Option(None, help="Sampler (default: the model's)."),
    guidance: Optional[float] = typer.Option(None, help="Classifier-free guidance scale (default: the model's)."),
    calibration_seed: int = typer.Option(7001, help="Seed of the calibration captions and their noise."),
    test_seed: int = typer.Option(7002, help="Seed of the test captions and their noise."),
    device: str = typer.Option("auto", help="auto, cpu or cuda[:N]."),
    threads: Optional[int] = typer.Option(None, help="CPU threads for torch (default: torch's choice)."),
    value_norm: bool = typer.Option(False, help="Weight each token's attention by its value vector's norm (Kobayashi "
                                    "et al. 2020): the alternative map; special-token shares then weigh by it too."),
    out: Optional[Path] = typer.Option(None, help="Where to write the JSON report (default: prompts/reports/"
                                       "daam-<model>.json, with -value-norm before .json for --value-norm; <model>: "
                                       "shapes for the pixel model, shapes-latent for the latent one)."),
) -> None:
    """Measure DAAM's maps against the shapes checker's exact masks: by step, layer and head; head-dependent
    overlap, adjective spread, entanglement and special tokens, each with n and a 95% bootstrap interval."""

    from generator.evaluate.daam_report import measure

    if n < 4 or bins < 1:
        raise UserError("--n must be at least 4 and --bins at least 1")
    if calibration_seed == test_seed:
        raise UserError("--calibration-seed and --test-seed must differ (the sets must be disjoint)")
    adapter = _shapes_model(weights, device, threads)
    identity = model_identity(adapter, weights)
    default_out = REPORTS / f"daam-{identity['slug']}{'-value-norm' if value_norm else ''}.json"
    out = out or default_out
    adapter.make_scheduler(scheduler)  # an unknown sampler is a UserError before any work
    with training_progress("eval daam") as report:
        result = measure(adapter, n=n, bins=bins, steps=steps, guidance=guidance, scheduler=scheduler, value_norm=value_norm,
                         calibration_seed=calibration_seed, test_seed=test_seed, progress=report)
    result["settings"].update(identity)
    result["settings"]["command"] = (f"diffatlas eval daam{_weights_option(weights)} --n {n} --bins {bins} --calibration-seed {calibration_seed} "
                                     f"--test-seed {test_seed}" + (" --value-norm" if value_norm else "") + (f" --threads {threads}" if threads else "")
                                     + _out_option(out, default_out))
    write_json(out, result)
    summed, best = result["faithfulness"]["summed"], result["faithfulness"]["most_faithful"]
    parts = [f"summed map mIoU {summed['test']['mean']:.3f} at tau {summed['tau']:g} (test, tau from calibration)"]
    parts += [f"{family}: {row['name']} {row['test']['mean']:.3f} ({row['share_of_summed']:.0%})" for family, row in best.items()]
    console.print("; ".join(parts) + f"; {out}")


@eval_app.command("daam-edits")
def eval_daam_edits_command(
    n: int = typer.Option(24, help="Two-object captions (half 'and', half relation); each edited three ways."),
    tau: float = typer.Option(0.5, help="Threshold of the word maps (use the calibrated tau of `eval daam`)."),
    weights: Path = typer.Option(SHIPPED, help="Folder of a shapes model (default: the shipped one)."),
    steps: Optional[int] = typer.Option(None, help="Sampling steps (default: the model's measured defaults)."),
    seed: int = typer.Option(7003, help="Seed of the captions and their noise."),
    device: str = typer.Option("auto", help="auto, cpu or cuda[:N]."),
    threads: Optional[int] = typer.Option(None, help="CPU threads for torch (default: torch's choice)."),
    out: Optional[Path] = typer.Option(None, help="Where to write the JSON report (default: prompts/reports/"
                                       "daam-edits-<model>.json, as eval daam)."),
) -> None:
    """Attention against intervention: change one word from the same noise and compare where the image changed
    with that word's DAAM map (IoU, rank correlation; baseline: the other object's map)."""

    from generator.evaluate.daam_edits import measure_edits

    if n < 2 or not 0 <= tau <= 1:
        raise UserError("--n must be at least 2 and --tau between 0 and 1")
    adapter = _shapes_model(weights, device, threads)
    identity = model_identity(adapter, weights)
    default_out = REPORTS / f"daam-edits-{identity['slug']}.json"
    out = out or default_out
    with training_progress("eval daam-edits") as report:
        result = measure_edits(adapter, n=n, tau=tau, seed=seed, steps=steps, progress=report)
    result["command"] = (f"diffatlas eval daam-edits{_weights_option(weights)} --n {n} --tau {tau:g} --seed {seed}"
                         + (f" --threads {threads}" if threads else "") + _out_option(out, default_out))
    result.update(identity)
    write_json(out, result)
    parts = [f"{kind}: IoU {row['iou']['mean']} vs baseline {row['baseline_iou']['mean']}, rho {row['rho']['mean']}"
             for kind, row in result["by_edit"].items() if row["edits"]]
    console.print("; ".join(parts) + f"; {out}")


def _weights_option(weights: Path) -> str:
    """`` --weights FOLDER`` for a model other than the shipped pixel one (as the user would type it)."""
    if weights.resolve() == SHIPPED.resolve():
        return ""
    return f" --weights {_typed(weights)}"


def _out_option(out: Path, default: Path) -> str:
    return "" if out.resolve() == default.resolve() else f" --out {_typed(out)}"


def _typed(path: Path) -> str:
    """A path as the command shows it: relative to the working folder when inside it, else absolute."""
    return shown_path(str(path)) if path.resolve().is_relative_to(Path.cwd()) else str(path.resolve())


def _shapes_model(weights: Path, device: str, threads: Optional[int]):
    """The model of the shapes world in ``weights`` (the pixel model's folder or a Stable Diffusion folder such as
    the latent model's), after the checks both commands make."""
    import torch

    from generator.evaluate.shapes_report import shapes_world_model

    if not (weights / "unet").exists():
        raise UserError(f"no shapes model in {weights}; train one with `diffatlas train shapes --ship-to {weights}`")
    if threads:
        torch.set_num_threads(threads)
    return shapes_world_model(weights, str(resolve_device(device)))
