"""Bake stage: the slide files of every course-chapter figure (PNG, GIF and MP4 of its run, caption text).

Each function takes what the chapter bake (generator/bake/chapters/experiments.py, course_views.py) already has
for one figure, composes its PNG with ``generator.bake.chapters.slides`` and returns the figure's ``downloads``
entry. Animations are a run's trajectory as prompt pages show it: x_t on the left, the model's estimate of the
clean image on the right, one frame per step. The caption file names the figure, says what it shows, what the
judge found where the model has one, and the model and sampler it came from.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from PIL import Image

from generator.bake.chapters.slides import caption_text, download, labelled_row, labelled_table, side_by_side, upscaled
from generator.models.base import to_pil

SIDE = 128  # pixels per image in a slide PNG (32 x 32 results are enlarged 4x, crisp)


def pil(image: torch.Tensor) -> Image.Image:
    """A (3, H, W) [0, 1] tensor as an RGB image enlarged to ``SIDE``."""
    (picture,) = to_pil(image[None])
    return upscaled(picture, SIDE)


def frames(run: Any) -> list[Image.Image]:
    """A run's trajectory as animation frames: x_t and the predicted x0 side by side."""
    trajectory = run.trajectory
    return side_by_side([[upscaled(p, SIDE) for p in to_pil(trajectory.noisy)],
                         [upscaled(p, SIDE) for p in to_pil(trajectory.predicted)]])


def source(baker: Any, steps: Any = None, guidance: Any = None) -> str:
    """The caption's last paragraph: the chapter, the model and the sampler."""
    settings = [baker.scheduler]
    if steps is not None:
        settings.append(f"{steps} steps")
    if guidance is not None:
        settings.append(f"guidance {guidance:g}")
    return (f"From the diffusion-atlas chapter \"{baker.spec.title}\": model {baker.adapter.id} (weights "
            f"{baker.adapter.weight_hash}), {', '.join(settings)}.")


def found(judgement: dict | None) -> str:
    """What the judge found, in words: 'red circle ✓, above ✗ (below)' ('' when not judged)."""
    if not judgement:
        return ""
    return ", ".join(c["asked"] + (" ✓" if c["correct"] else f" ✗ ({c['found']})") for c in judgement["claims"])


def name(baker: Any, figure: str) -> str:
    """The download name of a figure's files: course-<chapter>-<figure>."""
    return f"course-{baker.chapter_id}-{figure}"


def views_download(baker: Any, entry: dict, run: Any, views: Sequence[torch.Tensor], section: str) -> dict:
    """An anagram's or hybrid's slide: its two views (labelled with their prompts), the run, the seed pick."""
    p1, p2 = entry["prompts"]
    pick = entry["pick"]
    if section == "anagrams":
        title = f"Visual anagram: \"{p1}\" upright, \"{p2}\" turned 180°"
        what = ("At every step the noise estimate is the average of the estimate for the image under the first "
                "prompt and the estimate for the image turned upside down under the second, turned back.")
        cells = [(pil(views[0]), f"upright: {p1}"), (pil(views[1]), f"turned 180°: {p2}")]
    else:
        title = f"Hybrid image: \"{p1}\" from afar, \"{p2}\" up close"
        what = (f"Low frequencies from the estimate under the first prompt, high frequencies from the estimate under "
                f"the second (Gaussian kernel {entry['kernel_size']}, sigma {entry['sigma']:g}); from afar only the "
                "low frequencies remain (the far view is that low-pass).")
        cells = [(pil(views[1]), f"up close: {p2}"), (pil(views[0]), f"from afar: {p1}")]
    tried = pick["tried"]
    if pick["rule"] == "first-pass":
        seeds = f"Seed {entry['seed']}, the first of {tried} seeds tried whose views the judge passes " \
                f"({pick['passed']} of {tried} passed)."
    elif pick["rule"] == "best":
        seeds = f"None of the {tried} seeds tried passed; shown is the closest, seed {entry['seed']}."
    else:
        seeds = f"Seed {entry['seed']}."
    judged = [f"{view['view']}: asked \"{view['prompt']}\", found {found(view['image'].get('verdict'))}"
              for view in entry["views"] if view["image"].get("verdict")]
    animation = f"The animation: x_t (left) and the predicted clean image (right) at each of the {entry['steps']} " \
                "steps."
    text = caption_text(title, [what, seeds, *judged, animation], source(baker, entry["steps"], entry["guidance"]))
    kind = "anagram" if section == "anagrams" else "hybrid"
    return download(baker.store, name(baker, f"{kind}-{entry['id']}"), text, labelled_row(cells, title), frames(run))


def edit_download(baker: Any, figure: str, title: str, what: str, cells: list[tuple[torch.Tensor, str]],
                  run: Any, steps: int, guidance: float, extra: Sequence[str] = ()) -> dict:
    """An SDEdit or inpainting slide: its images in a labelled row, and one run's animation."""
    text = caption_text(title, [what, *extra, "The animation: x_t (left) and the predicted clean image (right) at "
                                               "each step."], source(baker, steps, guidance))
    row = labelled_row([(pil(image), label) for image, label in cells], title)
    return download(baker.store, name(baker, figure), text, row, frames(run))


def forward_download(baker: Any, clean: torch.Tensor, levels: Sequence[Any]) -> dict:
    """The forward process: the clean image and its noised versions, labelled with t and alpha_bar."""
    title = "The forward process: x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps"
    cells = [(pil(clean), "clean")] + [(pil(level.image), f"t = {level.timestep}, ᾱ = {level.alpha_bar:.3f}")
                                       for level in levels]
    text = caption_text(title, ["The clean image noised to each timestep of the model's training schedule, with one "
                                "noise draw."], source(baker))
    return download(baker.store, name(baker, "forward"), text, labelled_row(cells, title))


def denoise_download(baker: Any, spec: Any, levels: Sequence[Any]) -> dict:
    """The denoising baselines: per noise level the noisy image, the best blur, one step and iterative."""
    title = "Denoising baselines: Gaussian blur, one step, iterative"
    rows = [(f"t = {level.timestep}", [pil(level.noisy), pil(level.best_blur.image), pil(level.one_step.image),
                                       pil(level.iterative.image)]) for level in levels]
    scores = [f"t = {level.timestep}: blur sigma {level.best_blur.sigma:g} {level.best_blur.psnr:.1f} dB, one step "
              f"{level.one_step.psnr:.1f} dB, iterative {level.iterative.psnr:.1f} dB (PSNR against the clean image)"
              for level in levels]
    text = caption_text(title, [f"The same noisy image cleaned three ways, prompt \"{spec.prompt}\". The animation: "
                                "iterative denoising from the noisiest level.", *scores],
                        source(baker, spec.run.steps, spec.run.guidance))
    table = labelled_table(rows, ["noisy", "Gaussian blur", "one step", "iterative"], title)
    return download(baker.store, name(baker, "denoise"), text, table, frames(levels[-1].iterative_run))


def samples_download(baker: Any, spec: Any, grid: list[dict], run: Any) -> dict:
    """The sample grid: one row per seed, one column per step count and guidance scale."""
    title = f"\"{spec.prompt}\": step counts and guidance, one row per seed"
    header = [f"{cell['steps']} steps, γ = {cell['guidance']:g}" for cell in grid]
    rows = [(f"seed {seed}", [pil(cell["images"][k]) for cell in grid]) for k, seed in enumerate(spec.all_seeds())]
    agree = [cell["verdicts"][k] for cell in grid for k in range(len(rows)) if cell["verdicts"][k] is not None]
    judged = [f"The judge finds everything the prompt asks in {sum(agree)} of {len(agree)} images."] if agree else []
    text = caption_text(title, ["Each row starts from one seed's noise; each column is one setting (γ = 0 is the "
                                "unconditional estimate, which never reads the prompt).", *judged,
                                f"The animation: sampling with guidance {run.guidance:g}, seed {spec.all_seeds()[0]}."],
                        source(baker))
    return download(baker.store, name(baker, "samples"), text, labelled_table(rows, header, title), frames(run))
