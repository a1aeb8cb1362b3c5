"""Errors before work starts: every model-dependent mistake is exactly one stderr line, before any header,
progress bar or model load, through the CLI on testing:tiny-sd and embedded:shapes."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
import torch

from generator.models.registry import model_limits

LONG = "a red circle above a blue square and " * 12 + "a green triangle"


def prompt_file(folder: Path, model: str, defaults: str = "", prompt: str = "a red circle", extra: str = "") -> Path:
    """A prompt file whose one prompt is on line 5 (line 3 holds ``defaults``' keys)."""
    path = folder / "set.yaml"
    path.write_text(f"model: {model}\ndefaults:\n  {defaults or 'steps: 2'}\nprompts:\n  - {{id: cat, text: {prompt}}}\n"
                    + textwrap.dedent(extra))
    return path


def run_cli(monkeypatch, capsys, *arguments: str) -> tuple[int, str, str]:
    """diffatlas in this process: (exit code, stdout, stderr)."""
    from generator.cli import main

    monkeypatch.setattr(sys, "argv", ["diffatlas", *arguments])
    with pytest.raises(SystemExit) as exit_info:
        main()
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def assert_only_error(monkeypatch, capsys, path: Path, expected: str, *extra: str) -> None:
    """bake and build both print exactly 'error: <expected>' and nothing else, and write nothing."""
    out = path.parent / "generated"
    assert run_cli(monkeypatch, capsys, "bake", str(path), "--out", str(out), *extra) == (2, "", f"error: {expected}\n")
    assert not out.exists()


MODELS = ["testing:tiny-sd", "embedded:shapes"]


@pytest.mark.parametrize("model", MODELS)
def test_size_not_a_multiple_is_the_only_line(tmp_path, monkeypatch, capsys, model):
    multiple = model_limits(model).size_multiple
    path = prompt_file(tmp_path, model, f"width: {multiple * 4 + 2}")
    assert_only_error(monkeypatch, capsys, path, f"{path}:5: width {multiple * 4 + 2} is not a multiple of {multiple}, "
                                                 f"which {model} needs")


@pytest.mark.parametrize("model", MODELS)
def test_prompt_over_the_token_limit_is_the_only_line(tmp_path, monkeypatch, capsys, model):
    path = prompt_file(tmp_path, model, prompt=LONG)
    limits = model_limits(model)
    out = tmp_path / "generated"
    code, stdout, stderr = run_cli(monkeypatch, capsys, "bake", str(path), "--out", str(out))
    assert (code, stdout, stderr.count("\n")) == (2, "", 1) and not out.exists()
    assert stderr.startswith(f"error: {path}:5: prompt 'cat': longer than the text encoder's {limits.max_tokens} tokens; "
                             "these words would be cut: ")
    assert stderr.rstrip().endswith("green triangle")


@pytest.mark.parametrize("model", MODELS)
def test_unknown_scheduler_is_the_only_line(tmp_path, monkeypatch, capsys, model):
    from generator.models.schedulers import SCHEDULERS

    path = prompt_file(tmp_path, model, "scheduler: heun9")
    assert_only_error(monkeypatch, capsys, path, f"{path}:5: unknown scheduler 'heun9'; choose one of "
                                                 f"{', '.join(SCHEDULERS)}")


def test_a_scheduler_of_the_other_family_is_the_only_line(tmp_path, monkeypatch, capsys):
    # a flow-matching model lists only the flow schedulers; a noise-prediction name is refused before loading
    path = prompt_file(tmp_path, "testing:tiny-sd3", "scheduler: ddim", prompt="a red circle")
    assert_only_error(monkeypatch, capsys, path, f"{path}:5: unknown scheduler 'ddim'; choose one of flow-euler, flow-heun")


@pytest.mark.parametrize("model", MODELS)
def test_experiment_prompt_over_the_token_limit_is_the_only_line(tmp_path, monkeypatch, capsys, model):
    extra = f"""\
    experiments:
      samples:
        prompt: {LONG}
        step_counts: [2]
        guidance_scales: [1]
    """
    path = prompt_file(tmp_path, model, extra=extra)
    out = tmp_path / "generated"
    code, stdout, stderr = run_cli(monkeypatch, capsys, "bake", str(path), "--out", str(out))
    assert (code, stdout, stderr.count("\n")) == (2, "", 1) and not out.exists()
    assert stderr.startswith(f"error: {path}:8: experiment prompt ")


def test_anagram_on_a_latent_model_is_the_only_line(tmp_path, monkeypatch, capsys):
    extra = """\
    experiments:
      anagrams:
        - prompts: [a red cat, a dog]
    """
    path = prompt_file(tmp_path, "testing:tiny-sd", extra=extra)
    out = tmp_path / "generated"
    code, stdout, stderr = run_cli(monkeypatch, capsys, "bake", str(path), "--out", str(out))
    assert (code, stdout, stderr.count("\n")) == (2, "", 1) and not out.exists()
    assert stderr.startswith(f"error: {path}:8: visual anagrams need a pixel-space model, and testing:tiny-sd denoises "
                             "VAE latents")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_absent_cuda_is_the_only_line(tmp_path, monkeypatch, capsys):
    path = prompt_file(tmp_path, "testing:tiny-sd")
    assert_only_error(monkeypatch, capsys, path, "--device cuda was asked for, but this machine has no CUDA GPU "
                                                 "(use --device cpu or auto)", "--device", "cuda")


def test_build_checks_every_file_before_baking_the_first(tmp_path, monkeypatch, capsys):
    good = tmp_path / "good"
    good.mkdir()
    first = prompt_file(good, "testing:tiny-sd")
    bad = prompt_file(tmp_path, "testing:tiny-sd", "width: 60")
    monkeypatch.chdir(tmp_path)  # build writes to ./site/generated
    code, stdout, stderr = run_cli(monkeypatch, capsys, "build", str(first), str(bad))
    assert (code, stdout) == (2, "")
    assert stderr == f"error: {bad}:5: width 60 is not a multiple of 8, which testing:tiny-sd needs\n"
    assert not (tmp_path / "site").exists()


def test_daam_prompt_over_the_token_limit_is_the_only_line(tmp_path, monkeypatch, capsys):
    out = tmp_path / "daam"
    code, stdout, stderr = run_cli(monkeypatch, capsys, "daam", LONG, "--model", "embedded:shapes", "--out", str(out))
    assert (code, stdout, stderr.count("\n")) == (2, "", 1) and not out.exists()
    tokens = model_limits("embedded:shapes").max_tokens
    assert stderr.startswith(f"error: the prompt is longer than the text encoder's {tokens} tokens; these words would be cut:")
