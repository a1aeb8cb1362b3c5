"""Bake stage: the slide files of every training-chapter figure (PNG, GIF and MP4 of the epoch animations, caption).

Each function takes what the training bake (generator/bake/chapters/training.py) has for one figure as images
(the digit grids it stores as stills) or numbers, composes the PNG with ``generator.bake.chapters.slides`` and
returns the figure's ``downloads`` entry. Captions name the figure, say what it shows and where it comes from, and
credit MNIST wherever its test digits are shown.
"""

from __future__ import annotations

from typing import Any, Sequence

from PIL import Image

from generator.bake.chapters.diagrams import diagram_png, loss_chart_png
from generator.bake.chapters.slides import caption_text, download, labelled_row, labelled_table
from generator.bake.store import AssetStore

MNIST_ATTRIBUTION = ("MNIST database of handwritten digits by Yann LeCun, Corinna Cortes and Christopher J.C. "
                     "Burges, CC BY-SA 3.0")
STAGE_NAMES = {"denoiser": "single-step denoiser", "time": "time-conditioned DDPM", "class": "class-conditioned DDPM",
               "flow-time": "time-conditioned flow-matching model", "flow-class": "class-conditioned flow-matching model"}


def source(chapter: dict) -> str:
    """The caption's last paragraph: the chapter and the models it shows."""
    return f"From the diffusion-atlas chapter \"{chapter['title']}\": the small MNIST UNets trained by this project " \
           "(generator/weights/digits), DDPM sampling."


def digits_words(chapter: dict) -> str:
    """What the noised digits are, with MNIST's credit when they are test digits."""
    digits = chapter["test_digits"]
    if digits["source"] == "mnist-test":
        return f"The digits are the first MNIST test image of each of {', '.join(map(str, digits['labels']))} " \
               f"({MNIST_ATTRIBUTION})."
    return "No MNIST test digits were given, so the digits are samples of the class-conditioned model."


def name(chapter: dict, figure: str) -> str:
    """The download name of a figure's files: training-<chapter>-<figure>."""
    return f"training-{chapter['id']}-{figure}"


def forward_download(store: AssetStore, chapter: dict, rows: Sequence[tuple[float, Image.Image]]) -> dict:
    """Forward noising: one row of digits per sigma."""
    title = "Forward noising z = x + sigma eps"
    text = caption_text(title, ["The same noise eps scaled by each sigma and added to the clean digits (pixels in "
                                "[0, 1], shown clipped).", digits_words(chapter)], source(chapter))
    table = labelled_table([(f"σ = {sigma:g}", [grid]) for sigma, grid in rows], title=title)
    return download(store, name(chapter, "forward"), text, table)


def denoiser_download(store: AssetStore, chapter: dict, sigma: float, noisy: Image.Image,
                      epochs: Sequence[tuple[int, Image.Image, float]],
                      sweep: Sequence[tuple[float, Image.Image, Image.Image, float]]) -> dict:
    """The single-step denoiser: its result after each snapshot epoch, then the last one at every sigma."""
    title = f"A single-step denoiser trained at sigma = {sigma:g}"
    rows = [(f"input, σ = {sigma:g}", [noisy])] + [(f"epoch {e}, MSE {mse:.4f}", [image]) for e, image, mse in epochs]
    sweep_rows = [(f"σ = {s:g}, MSE {mse:.4f}", [noisy_image, denoised]) for s, noisy_image, denoised, mse in sweep]
    top = labelled_table(rows, title=title)
    bottom = labelled_table(sweep_rows, ["noisy input", "denoised"],
                            "Out of distribution: the last epoch at other sigmas")
    sheet = Image.new("RGB", (max(top.width, bottom.width), top.height + bottom.height), (255, 255, 255))
    sheet.paste(top, (0, 0))
    sheet.paste(bottom, (0, top.height))
    what = ("A UNet trained to map z = x + sigma eps straight back to x (L2 loss): its output after each snapshot "
            "epoch, then the last snapshot on other noise levels (MSE against the clean digits shown).")
    text = caption_text(title, [what, digits_words(chapter)], source(chapter))
    return download(store, name(chapter, "denoiser"), text, sheet)


def unet_download(store: AssetStore, chapter: dict, unet: dict) -> dict:
    """The UNet diagram."""
    words = STAGE_NAMES[unet["stage"]].replace(" DDPM", "")
    title = f"The {words} UNet ({unet['architecture']}, width D = {unet['hidden']}, {unet['params']:,} parameters)"
    blocks = [f"{b['name']} ({b['kind']}): {'x'.join(map(str, b['input']))} -> {'x'.join(map(str, b['output']))}"
              + (f", input concatenated with {b['skip_from']}" if b["skip_from"] else "") for b in unet["blocks"]]
    conditions = [f"{c['name']} ({'t/T' if c['signal'] == 'time' else 'class one-hot'}, "
                  f"{'x'.join(map(str, c['input']))} -> {'x'.join(map(str, c['output']))}) "
                  f"{'is added to' if c['operation'] == 'add' else 'multiplies'} the input of {c['enters']}"
                  for c in unet["conditioning"]]
    lines = ["Drawn from the model itself: one forward pass on a zero image recorded each block's output shape.",
             "Blocks: " + "; ".join(blocks) + ".",
             ("Conditioning: " + "; ".join(conditions) + ".") if conditions else ""]
    text = caption_text(title, lines, source(chapter))
    return download(store, name(chapter, "unet"), text, diagram_png(unet["geometry"], title))


def losses_download(store: AssetStore, chapter: dict, losses: dict[str, Any]) -> dict:
    """The loss curves: the DDPMs on one chart, the denoiser on another, stacked in one PNG."""
    title = "Training loss per step (log scale) and each epoch's mean"
    charts = [loss_chart_png([(s, losses[s]) for s in stages if s in losses], title if k == 0 else "", STAGE_NAMES)
              for k, stages in enumerate((("time", "class"), ("denoiser",))) if any(s in losses for s in stages)]
    sheet = Image.new("RGB", (max(c.width for c in charts), sum(c.height for c in charts)), (255, 255, 255))
    y = 0
    for chart in charts:
        sheet.paste(chart, (0, y))
        y += chart.height
    lines = [f"{STAGE_NAMES[s]}: {len(losses[s]['epoch_losses'])} epochs of {losses[s]['steps_per_epoch']} steps "
             f"(batch {losses[s]['batch_size']}), last epoch's mean loss {losses[s]['epoch_losses'][-1]:.4g}"
             for s in ("time", "class", "denoiser") if s in losses]
    shared = ("The time- and class-conditioned DDPMs share a chart (both predict the noise); the denoiser predicts "
              "the image.")
    text = caption_text("Loss curves of the MNIST models", [shared, *lines], source(chapter))
    return download(store, name(chapter, "losses"), text, sheet)


def epochs_download(store: AssetStore, chapter: dict, stage: str, finals: Sequence[tuple[int, Image.Image]],
                    frames: Sequence[Sequence[Image.Image]], description: str, verdicts: Sequence[str]) -> dict:
    """A DDPM's samples after each snapshot epoch (PNG) and the sampling of all epochs side by side (GIF, MP4)."""
    title = f"The {STAGE_NAMES[stage]}, epoch by epoch"
    columns = min(3, len(finals))
    png = labelled_row([(image, f"epoch {epoch}") for epoch, image in finals], title, columns=columns)
    count = max(len(strip) for strip in frames)
    animation = [labelled_row([(strip[min(k, len(strip) - 1)], f"epoch {epoch}")
                               for (epoch, _), strip in zip(finals, frames)], title, columns=columns)
                 for k in range(count)]
    text = caption_text(title, [description, *verdicts, "The animation: the sampling of every snapshot epoch side by "
                                "side, from the same noise, x_t from pure noise to the digits."], source(chapter))
    return download(store, name(chapter, f"epochs-{stage}"), text, png, animation, frame_ms=160)


def guidance_download(store: AssetStore, chapter: dict, epoch: int, rows: Sequence[tuple[float, Image.Image]]) -> dict:
    """The guidance sweep: one row of digits 0-9 per guidance scale."""
    title = f"Classifier-free guidance, class-conditioned model after epoch {epoch}"
    table = labelled_table([(f"γ = {gamma:g}", [image]) for gamma, image in rows], title=title)
    text = caption_text(title, ["Every row from the same noise, digits 0 to 9: gamma = 0 ignores the class (the "
                                "unconditional estimate), larger gamma gives cleaner, more typical digits and less "
                                "variety."], source(chapter))
    return download(store, name(chapter, "guidance"), text, table)
