"""CLI stage: ``diffatlas train digits`` and ``diffatlas eval digits`` (the MNIST chapter's models).

Parsing and progress bars only; the work is done by ``generator.builtin.digits`` (training) and
``generator.evaluate`` (measuring). torch is imported inside
the commands so ``diffatlas --help`` stays fast.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import replace
from pathlib import Path
from typing import Callable, Optional

import typer

from generator.cli.app import eval_app, train_app
from generator.cli.progress import console, progress_bar
from generator.devices import hardware_description, resolve_device
from generator.errors import UserError

STAGE_HELP = "denoiser (single-step, sigma 0.5), time (time-conditioned DDPM), class (class-conditioned DDPM + CFG), classifier (the judge), classifier2 (the independent judge: a LeNet-style CNN, seed 1)"


def _parse_epochs(text: str | None) -> tuple[int, ...] | None:
    """'1,5,10' -> (1, 5, 10)."""
    if text is None:
        return None
    try:
        return tuple(sorted({int(part) for part in text.split(",") if part.strip()}))
    except ValueError:
        raise UserError(f"--snapshots must be comma-separated epoch numbers, got {text!r}") from None


def _command(stage: str, data: Path, options: dict[str, object], ship_to: Path | None) -> str:
    """The effective command line (every setting spelled out), recorded in shipped configs."""
    parts = ["diffatlas", "train", "digits", "--stage", stage]
    for flag, value in options.items():
        if value is not None:
            parts += [flag, str(value)]
    parts += ["--data", str(data)]
    if ship_to is not None:
        parts += ["--ship-to", str(ship_to)]
    return " ".join(shlex.quote(p) for p in parts)


@train_app.command("digits")
def train_digits_command(
    stage: str = typer.Option("class", help=STAGE_HELP),
    epochs: Optional[int] = typer.Option(None, help="Epochs (course: 5 for denoiser, 20 for time/class)."),
    batch: Optional[int] = typer.Option(None, help="Batch size (course: 256 denoiser, 128 time/class)."),
    hidden: Optional[int] = typer.Option(None, help="UNet hidden width D (course: 128 denoiser, 64 time/class)."),
    snapshots: Optional[str] = typer.Option(None, help="Epochs that save weight snapshots, e.g. 1,5,10,15,20."),
    subset: Optional[int] = typer.Option(None, help="Train on the first N images only (quick runs)."),
    device: str = typer.Option("auto", help="auto, cpu or cuda[:N]."),
    threads: Optional[int] = typer.Option(None, help="CPU threads for torch (default: torch's choice)."),
    data: Path = typer.Option(Path("data/mnist"), help="Folder with the four MNIST IDX files (.gz or not), e.g. "
                              "torchvision's MNIST/raw or keras' cache."),
    out: Optional[Path] = typer.Option(None, help="Output folder (default build/train/digits/STAGE)."),
    resume: bool = typer.Option(False, help="Continue from OUT/checkpoint.pt (identical to an uninterrupted run)."),
    seed: Optional[int] = typer.Option(None, help="Seed for initialisation, shuffling and noise (default 0; "
                                       "1 for classifier2, so the two judges never share one)."),
    ema: Optional[float] = typer.Option(None, help="Also keep an EMA of the weights with this decay (e.g. 0.999), "
                                        "saved under OUT/ema/ and OUT/snapshots/ema/."),
    ship_to: Optional[Path] = typer.Option(None, help="After training, copy fp16 weights + config here "
                                           "(maintainers: generator/weights/digits/STAGE)."),
    objective: str = typer.Option("ddpm", help="time/class stages: ddpm (predict the noise, 300-step DDPM) or flow "
                                  "(flow matching: predict the velocity eps - x0, sampled with Euler steps)."),
) -> None:
    """Train a digits model on MNIST from scratch (CS180 part B)."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    from generator.builtin.digits.mnist import load_mnist
    from generator.builtin.digits.train import stage_defaults, train_digits

    device_name = str(resolve_device(device))
    out_dir = out or Path("build/train/digits") / (stage if objective == "ddpm" else f"{objective}-{stage}")
    train = load_mnist(data, "train")
    if stage in ("classifier", "classifier2"):
        def command(effective_seed: int) -> str:
            return _command(stage, data, {"--epochs": epochs, "--batch": batch, "--seed": effective_seed,
                                          "--threads": threads}, ship_to)

        _train_classifier(stage, train, load_mnist(data, "test"), out_dir, epochs, batch, seed,
                          ship_to, command, device_name)
        return
    try:
        config = stage_defaults(stage)
    except ValueError as error:
        raise UserError(f"--stage must be denoiser, time, class, classifier or classifier2, not {stage!r}") from error
    overrides = {"epochs": epochs, "batch_size": batch, "hidden": hidden, "snapshot_epochs": _parse_epochs(snapshots),
                 "train_subset": subset, "seed": seed, "ema_decay": ema, "objective": objective}
    try:
        config = replace(config, **{k: v for k, v in overrides.items() if v is not None})
    except ValueError as error:
        raise UserError(str(error)) from error
    command = _command(stage, data, {"--objective": None if objective == "ddpm" else objective,
        "--epochs": config.epochs, "--batch": config.batch_size, "--hidden": config.hidden,
        "--snapshots": ",".join(str(e) for e in config.snapshot_epochs), "--subset": config.train_subset,
        "--seed": config.seed, "--ema": config.ema_decay, "--threads": threads}, ship_to)
    images, labels = torch.from_numpy(train.images), torch.from_numpy(train.labels)
    with progress_bar(f"train {objective} {stage}") as report:
        state = train_digits(config, images, labels, out_dir, resume=resume, device=device_name, progress=report)
    console.print(f"{stage}: {state.epoch} epochs, final epoch loss {state.epoch_losses[-1]:.5f}, "
                  f"{state.seconds:.0f} s; written to {out_dir}")
    if ship_to is not None:
        from generator.builtin.digits.weights import ship_digits_run

        ship_digits_run(out_dir, ship_to, {"command": command, "hardware": hardware_description(device_name)})
        console.print(f"shipped fp16 weights to {ship_to}")


def _train_classifier(stage: str, train, test, out_dir: Path, epochs: int | None,  # noqa: ANN001
                      batch: int | None, seed: int | None, ship_to: Path | None, command: Callable[[int], str],
                      device: str) -> None:
    """Train, measure and save a judge classifier: the shipped one (``classifier``) or the independent one
    (``classifier2``)."""
    import time

    import torch

    from generator.builtin.digits.classifier import accuracy
    from generator.builtin.digits.train import save_weights, write_json

    overrides = {k: v for k, v in {"epochs": epochs, "batch_size": batch, "seed": seed}.items() if v is not None}
    images, labels = torch.from_numpy(train.images), torch.from_numpy(train.labels)
    started = time.perf_counter()
    with progress_bar(f"train {stage}") as report:
        if stage == "classifier":
            from generator.builtin.digits.classifier import ClassifierConfig, train_classifier

            config = replace(ClassifierConfig(), **overrides)
            model = train_classifier(config, images, labels, report)
            architecture = "DigitClassifier"
        else:
            from generator.builtin.digits.classifier2 import Classifier2Config, train_classifier2

            config = replace(Classifier2Config(), **overrides)
            model = train_classifier2(config, images, labels, report)
            architecture = "LeNetClassifier"
    train_seconds = time.perf_counter() - started
    test_images, test_labels = torch.from_numpy(test.images), torch.from_numpy(test.labels)
    test_accuracy = accuracy(model, test_images, test_labels)
    meta = {"architecture": architecture, "train": config.to_json(), "test_accuracy": round(test_accuracy, 4),
            "test_images": int(test_labels.shape[0]), "train_images": int(labels.shape[0]),
            "params": sum(p.numel() for p in model.parameters()), "command": command(config.seed),
            "hardware": hardware_description(device), "torch": torch.__version__,
            "train_seconds": round(train_seconds, 1)}
    out_dir.mkdir(parents=True, exist_ok=True)
    save_weights(out_dir / "model.safetensors", model)
    write_json(out_dir / "config.json", meta)
    if ship_to is not None:  # fp16 halves the size; record what the shipped weights score, as the judges use them
        from generator.builtin.digits.classifier import load_classifier
        from generator.builtin.digits.classifier2 import load_classifier2

        ship_to.mkdir(parents=True, exist_ok=True)
        save_weights(ship_to / "model.safetensors", model, dtype=torch.float16)
        write_json(ship_to / "config.json", {**meta, "dtype": "float16"})  # load_classifier2 reads the architecture
        shipped = load_classifier(ship_to / "model.safetensors") if stage == "classifier" else load_classifier2(ship_to)
        write_json(ship_to / "config.json", {**meta, "dtype": "float16", "test_accuracy_fp32": meta["test_accuracy"],
                                             "test_accuracy": round(accuracy(shipped, test_images, test_labels), 4)})
    console.print(f"{stage} test accuracy {test_accuracy:.4f} ({train_seconds:.0f} s); written to {out_dir}")


@eval_app.command("digits")
def eval_digits_command(
    n: int = typer.Option(500, help="Samples per model (classes balanced for the class model)."),
    gamma: float = typer.Option(5.0, help="Classifier-free guidance scale of the class model."),
    seed: int = typer.Option(0, help="Sampling seed."),
    weights: Optional[Path] = typer.Option(None, help="Folder with class/, time/ and classifier/ "
                                           "(default: the shipped generator/weights/digits)."),
    stage: str = typer.Option("both", help="class, time or both."),
    device: str = typer.Option("auto", help="auto, cpu or cuda[:N]."),
    out: Path = typer.Option(Path("build/eval/digits.json"), help="Where to write the JSON result."),
    sweep: bool = typer.Option(False, help="Instead: measure every scheduler x steps (25, 50, 100), then the best "
                               "x guidance (1, 3, 5, 7.5) for the class model, with the classifier as the judge; "
                               "write the best as STAGE/defaults.json (the model's defaults everywhere)."),
    sweep_n: int = typer.Option(100, help="Samples per sweep cell."),
    second_judge: bool = typer.Option(True, help="Also score every sample with the independent classifier "
                                      "(WEIGHTS/classifier2, else the shipped one) and report how often the two "
                                      "judges agree."),
    objective: str = typer.Option("ddpm", help="ddpm (the class/ and time/ models, 300-step DDPM) or flow (the "
                                  "flow-matching flow-class/ and flow-time/ models, Euler steps); results go under "
                                  "class/time or flow-class/flow-time."),
    flow_steps: int = typer.Option(20, help="Euler steps of the flow-matching models."),
) -> None:
    """Sample the digits models and score them with the project's classifier and the independent one."""
    from generator.builtin.digits.classifier import load_classifier
    from generator.builtin.digits.classifier2 import load_classifier2
    from generator.builtin.digits.weights import load_digits_unet, shipped_weights_dir
    from generator.evaluate.digits_report import evaluate_digits, write_eval_json

    if stage not in ("class", "time", "both"):
        raise UserError(f"--stage must be class, time or both, not {stage!r}")
    if n < 1:
        raise UserError("--n must be at least 1")
    if objective not in ("ddpm", "flow") or flow_steps < 1:
        raise UserError(f"--objective must be ddpm or flow (got {objective!r}) and --flow-steps at least 1")
    prefix = "flow-" if objective == "flow" else ""
    root = weights or shipped_weights_dir()
    device_name = str(resolve_device(device))
    if sweep:
        for name in ("class", "time") if stage == "both" else (stage,):
            _sweep_defaults(root / name, name, device_name, sweep_n)
        return
    classifier_path = root / "classifier" / "model.safetensors"
    if not classifier_path.is_file():
        raise UserError(f"classifier weights {classifier_path} not found; train them with "
                        "`diffatlas train digits --stage classifier --ship-to DIR`")
    classifier = load_classifier(classifier_path)
    independent_dir = root / "classifier2" if (root / "classifier2" / "model.safetensors").is_file() \
        else shipped_weights_dir() / "classifier2"  # the independent judge does not depend on the models judged
    independent = load_classifier2(independent_dir) if second_judge else None
    class_model = class_config = time_model = time_config = None
    if stage in ("class", "both"):
        class_model, class_config = load_digits_unet(root / f"{prefix}class")
    if stage in ("time", "both"):
        time_model, time_config = load_digits_unet(root / f"{prefix}time")
    with progress_bar("eval digits") as report:
        result = evaluate_digits(class_model, class_config, time_model, time_config, classifier, n=n, gamma=gamma,
                                 seed=seed, device=device_name, progress=report, independent=independent,
                                 flow_steps=flow_steps)
    if prefix:
        for name in ("class", "time"):
            if name in result:
                result[prefix + name] = {**result.pop(name), "sampler": "euler", "flow_steps": flow_steps}
    result["judges"] = {"shipped": _judge_info(root / "classifier")}
    if independent is not None:
        result["judges"]["independent"] = _judge_info(independent_dir)
    write_eval_json(out, result)
    for line in _summary(result):
        console.print(line)
    console.print(f"written to {out}")


def _summary(result: dict) -> list[str]:
    """One line per model: each judge's share against the target, and how often the judges agree."""
    lines = []
    for stage, measure, words in (("class", "label_accuracy", "labelled as asked"),
                                  ("time", "confident_fraction", "read with confidence >= 0.9"),
                                  ("flow-class", "label_accuracy", "labelled as asked"),
                                  ("flow-time", "confident_fraction", "read with confidence >= 0.9")):
        scores = result.get(stage)
        if not scores:
            continue
        shares = [f"shipped judge {scores[measure]:.1%}"]
        if "independent" in scores:
            shares.append(f"independent judge {scores['independent'][measure]:.1%}")
        guidance = f" (gamma {scores['gamma']:g})" if "gamma" in scores else ""
        line = (f"{stage}{guidance}: {' / '.join(shares)} of "
                f"{scores['n']} samples {words} (target {scores['target']:.0%})")
        if "agreement" in scores:
            agree = scores["agreement"]
            line += (f"; the judges give the same label to {agree['same_label']:.1%} and the same verdict to "
                     f"{agree['same_verdict']:.1%}, both accept {agree['right_by_both']:.1%}")
        lines.append(line)
    return lines


def _judge_info(folder: Path) -> dict[str, object]:
    """What a judge is, from its config.json: architecture, parameters, MNIST test accuracy, training seed."""
    config = json.loads((folder / "config.json").read_text()) if (folder / "config.json").is_file() else {}
    return {"folder": folder.name, "architecture": config.get("architecture"), "params": config.get("params"),
            "test_accuracy": config.get("test_accuracy"), "seed": config.get("train", {}).get("seed")}


def _sweep_defaults(folder: Path, stage: str, device: str, n: int) -> None:
    """Measure the sampler grid of one digits model and record the best cell as its defaults.json."""
    from generator.builtin.defaults import write_defaults
    from generator.evaluate.digits_sweep import SWEEP_GUIDANCES, SWEEP_SEED, SWEEP_STEPS, digits_measure
    from generator.evaluate.sampler_sweep import staged_sweep
    from generator.models.digits import load_digits_adapter
    from generator.models.schedulers import SCHEDULERS

    adapter = load_digits_adapter(stage, model_dir=folder, device=device)
    guidances = SWEEP_GUIDANCES if adapter.class_conditional else ()  # the time model has nothing to guide
    with progress_bar(f"sweep samplers ({stage})") as report:
        result = staged_sweep(list(SCHEDULERS), SWEEP_STEPS, guidances, adapter.default_guidance,
                              digits_measure(adapter, n), progress=report)
    scored = "labelled as asked" if adapter.class_conditional else "read with confidence >= 0.9"
    chosen = write_defaults(folder, result, f"diffatlas eval digits --stage {stage} --sweep --sweep-n {n}",
                            {"n": n, "seed": SWEEP_SEED, "scored": [scored]})
    console.print(f"{stage}: measured defaults {chosen['scheduler']}, {chosen['steps']} steps, guidance "
                  f"{chosen['guidance']:g} (score {chosen['measured']['score']:.3f}); {folder / 'defaults.json'}")
