"""A real bake of every page type of the default site, small: the shipped shapes and digits models with reduced
settings (few steps, few seeds), rendered and built with `mkdocs build --strict` (for the browser tests).

What it holds, each baked by the code the default site uses (no fake manifests):
- shapes: one prompt page with a prompt pair, guidance x seed variants, DAAM, jumps, the guidance view and the
  schedule; the course chapter (every experiment kind, reduced); the faithfulness page and "What DAAM's maps tell
  us" from the shipped reports; the gallery and the judged-figures page;
- digits: a class-conditioned prompt page and the training chapter (shipped weights, reduced sampling);
- the hand-written home page and chapters of site/.
A unique module name, importable in any collection order (tests/browser is on sys.path through its conftest).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import fakesite  # (tests/render/fakesite.py, on sys.path through tests/browser/conftest.py)

REPO = Path(__file__).resolve().parents[2]

SHAPES = """\
title: Shapes (reduced)
model: embedded:shapes
defaults: {seed: 0, width: 32, height: 32, preview_size: 64, steps: 6}
prompts:
  - id: two-green-triangles
    text: two green triangles
    compare: three green triangles
    seed: 1
    guidances: [0, 7]
    seeds: [1, 2]
experiments:
  title: Course experiments (reduced)
  inputs: {scene: inputs/shapes-scene.png}
  forward: {image: scene, timesteps: [250, 750]}
  denoise: {image: scene, prompt: a red circle to the left of a blue square, timesteps: [500], blur_sigmas: [1]}
  samples: {prompt: a large yellow triangle at the top, seeds: [0], step_counts: [4], guidance_scales: [0, 3]}
  sdedit:
    - {id: scene, image: scene, prompt: a picture, start_indices: [1, 3], steps: 6}
  inpaint:
    - {id: box, image: scene, mask: {box: [0.5, 0.2, 0.95, 0.8]}, prompt: a red circle to the left of a yellow triangle}
  anagrams:
    - {id: flip, prompts: [a blue square at the top, a blue square at the bottom]}
  hybrids:
    - {id: mix, prompts: [a red circle, a blue square], kernel_size: 5, sigma: 1}
faithfulness:
  title: How faithful is DAAM?
  compare:
    - report: reports/shapes-t5-step8500+3750.json
daam_findings:
  title: What DAAM's maps tell us
"""

DIGITS = """\
title: Digits (reduced)
model: embedded:digits
defaults: {seed: 0, preview_size: 56, daam: false, steps: 6, jumps: {method: beta-sum, every: 3, steps: [1]}}
prompts:
  - id: digit-7
    text: "7"
training:
  title: Training a diffusion model from scratch
  data: inputs/mnist-test-digits
  test_digits: 2
  steps: 6
  frames: 3
  samples_per_digit: 1
  time_samples: 4
  guidances: [0, 5]
  guidance_samples: 1
"""


def bake_real_site(root: Path) -> Path:
    """Bake both reduced prompt files with the shipped models, render, `mkdocs build --strict`; returns build/site."""
    import torch

    from generator.bake.manifest import merge_index
    from generator.bake.runner import bake
    from generator.bake.store import write_json
    from generator.render import render_site
    from generator.spec.prompt_set import load_prompt_set

    torch.set_num_threads(1)  # a shared 2-core machine: more threads only contend
    fakesite.copy_site(root)
    prompts = root / "prompts"
    shutil.copytree(REPO / "prompts" / "inputs", prompts / "inputs")
    shutil.copytree(REPO / "prompts" / "reports", prompts / "reports")
    generated = root / "site" / "generated"
    prompt_sets = []
    for name, text in (("shapes.yaml", SHAPES), ("digits.yaml", DIGITS)):
        (prompts / name).write_text(text)
        prompt_sets.append(load_prompt_set(prompts / name))
        bake(prompt_sets[-1], generated, device="cpu")
    write_json(generated / "index.json", merge_index(generated, prompt_sets))  # as `diffatlas build` does
    render_site(generated, root / "site")
    return fakesite.mkdocs_build(root)
