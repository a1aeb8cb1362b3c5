"""Captions true to the model shown: what the manifest says the model is decides what the page says.

Fixture pages (tests/render/fakesite.py) get the sections a bake writes: a causal CLIP text encoder on one page
and a bidirectional T5 one on the other, DDIM on one and DDPM on the other; the text view, the pipeline panels
and the math panel must say different, correct things.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fakesite import between, page_text

from generator.render import render_site
from generator.render.charts import fmt

SD_SCHEDULE = {"num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear",
               "prediction_type": "epsilon", "clip_sample": False, "set_alpha_to_one": False, "steps_offset": 1}
CLIP = {"classes": ["CLIPTextModel"], "family": "clip", "attention": "causal", "padding_masked": False}
T5 = {"classes": ["T5EncoderModel"], "family": "t5", "attention": "bidirectional", "padding_masked": True}


def _schedule(name: str, steps: int) -> dict:
    """The schedule section a bake writes for this scheduler (generator/bake/prompt/schedule.py)."""
    from generator.bake.prompt.schedule import schedule_section
    from generator.models.schedulers import make_scheduler

    scheduler = make_scheduler(name, SD_SCHEDULE)
    scheduler.set_timesteps(steps)
    return schedule_section(scheduler)


def _tokens(encoder: dict) -> dict:
    texts = ["<|startoftext|>", "red</w>", "cat</w>", "<|endoftext|>", "<|endoftext|>", "<|endoftext|>"]
    specials = ["start", "", "", "end", "pad", "pad"]
    pieces = [{"index": i, "id": 10 + i, "text": t, "special": s, "word": (i - 1) if not s else None}
              for i, (t, s) in enumerate(zip(texts, specials))]
    identity = [[1.0 if i == j else 0.2 for j in range(5)] for i in range(5)]
    return {"max_length": 6, "dim": 4, "truncated": [], "pieces": pieces, "norms": [1.0] * 6,
            "similarity": {"tokens": [0, 1, 2, 3, 4], "values": identity}, "encoder": encoder}


def _dress(site: Path, pid: str, encoder: dict, scheduler: str, **settings) -> dict:
    """Give a fixture manifest the tokens, pipeline and schedule sections of a bake; returns the manifest."""
    path = site / "generated" / "prompts" / f"{pid}.json"
    manifest = json.loads(path.read_text())
    steps = manifest["trajectory"]["steps"]
    manifest["settings"].update(scheduler=scheduler, **settings)
    manifest["tokens"] = _tokens(encoder)
    manifest["pipeline"] = {"noise": manifest["trajectory"]["noisy"], "latents": manifest["trajectory"]["noisy"],
                            "latent_shape": [4, 8, 6], "space": "latent",
                            "conditioning": "text", "denoiser": "UNet2DConditionModel", "decoder": "AutoencoderKL"}
    manifest["schedule"] = _schedule(scheduler, steps)
    path.write_text(json.dumps(manifest))
    return manifest


@pytest.fixture
def dressed(site):
    clip = _dress(site, "red-cat", CLIP, "ddim")
    t5 = _dress(site, "two-dogs", T5, "ddpm")
    render_site(site / "generated", site)
    return site, clip, t5


def test_text_view_says_causal_for_clip_and_bidirectional_for_t5(dressed):
    site, _, _ = dressed
    clip = between(page_text(site, "red-cat"), '<figcaption class="atlas-caption" data-encoder=', "</figcaption>")
    t5 = between(page_text(site, "two-dogs"), '<figcaption class="atlas-caption" data-encoder=', "</figcaption>")
    assert 'data-encoder="causal"' in clip and 'data-encoder="bidirectional"' in t5
    assert "causal" in clip and "only from the tokens before it" in clip and "bidirectional" not in clip
    assert "bidirectional" in t5 and "read the whole prompt" in t5 and "before it" not in t5
    assert "masked out" in t5 and "masked" not in clip  # the shapes model's T5 masks padding; CLIP reads it


def test_pipeline_encoder_panel_follows_the_encoder(dressed):
    site, _, _ = dressed
    panel = '<section class="atlas-flow-panel" data-panel="text encoder"'
    clip = between(page_text(site, "red-cat"), panel, "</section>")
    t5 = between(page_text(site, "two-dogs"), panel, "</section>")
    assert "the tokens before it" in clip and "both sides" not in clip and "padding positions included" in clip
    assert "both sides" in t5 and "tokens before it" not in t5 and "padding masked out" in t5


def test_math_panel_shows_the_update_of_the_scheduler_used(dressed):
    site, clip, t5 = dressed
    ddim = between(page_text(site, "red-cat"), 'data-scheduler="', "</p>")
    ddpm = between(page_text(site, "two-dogs"), 'data-scheduler="', "</p>")
    assert ddim.startswith('data-scheduler="ddim"') and 'data-update="ddim"' in ddim and "Song et al. 2021" in ddim
    assert ddpm.startswith('data-scheduler="ddpm"') and 'data-update="ddpm"' in ddpm and "Ho et al. 2020" in ddpm
    assert "DDIM" not in ddpm and "DDPM" not in ddim and "σ z" in ddpm and "σ z" not in ddim
    # this step's numbers, every step's ready for the scrubber: the coefficient of x0 at step 0, then the others
    for text, manifest in ((ddim, clip), (ddpm, t5)):
        updates = manifest["schedule"]["updates"]
        series = [fmt(u["coef_x0"]) for u in updates]
        assert f'data-step-values="{"|".join(series + series[-1:])}">{series[0]}</span>' in text
        assert len(updates) == manifest["trajectory"]["steps"]


def test_unknown_scheduler_gets_the_generic_update_and_no_schedule_the_plain_one(site):
    manifest = _dress(site, "red-cat", CLIP, "ddim")
    manifest["schedule"]["scheduler"]["kind"] = "other"
    manifest["schedule"]["scheduler"]["class"] = "PNDMScheduler"
    (site / "generated" / "prompts" / "red-cat.json").write_text(json.dumps(manifest))
    plain = _dress(site, "two-dogs", CLIP, "ddim")
    del plain["schedule"]  # a manifest from before schedules were baked
    (site / "generated" / "prompts" / "two-dogs.json").write_text(json.dumps(plain))
    render_site(site / "generated", site)
    page = page_text(site, "red-cat")
    assert 'data-update="other"' in page and "PNDMScheduler" in page and "Song et al." not in page
    assert 'data-scheduler="other"' in page_text(site, "two-dogs")  # no schedule section: generic, no DDIM claim
    assert "DDIM (" not in page_text(site, "two-dogs")


@pytest.mark.parametrize("prediction, words", [("epsilon", "predicts the noise ε in it"),
                                                ("v_prediction", "predicts the velocity v"),
                                                ("sample", "predicts the clean image x<sub>0</sub> itself")])
def test_denoiser_caption_follows_the_prediction_type(site, prediction, words):
    manifest = _dress(site, "red-cat", T5, "euler")
    manifest["model"]["prediction_type"] = prediction
    (site / "generated" / "prompts" / "red-cat.json").write_text(json.dumps(manifest))
    render_site(site / "generated", site)
    panel = between(page_text(site, "red-cat"), 'data-panel="loop denoiser"', "</section>")
    assert words in panel and f'data-prediction="{prediction}"' in panel
    others = {"epsilon", "v_prediction", "sample"} - {prediction}
    assert not any(re.search(f'data-prediction="{o}"', panel) for o in others)


@pytest.mark.parametrize("scale, says", [(1.0, "Guidance scale 1: the denoiser ran once per step, with the prompt only"),
                                         (0.0, "Guidance scale 0: the denoiser ran once per step, with the empty prompt")])
def test_guidance_0_and_1_say_there_is_no_decomposition(site, scale, says):
    path = site / "generated" / "prompts" / "red-cat.json"
    manifest = json.loads(path.read_text())
    manifest["settings"]["guidance"] = scale
    manifest["guidance"] = {"scale": scale, "conditioning": "text", "decomposed": False}
    path.write_text(json.dumps(manifest))
    render_site(site / "generated", site)
    figure = between(page_text(site, "red-cat"), 'id="guidance-red-cat"', "</figure>")
    assert says in figure and "no unconditional and conditional pair" in figure
    assert "atlas-sprite" not in figure


def test_class_conditioned_pipeline_names_no_text_components(site):
    manifest = _dress(site, "red-cat", CLIP, "ddpm")
    del manifest["tokens"]
    manifest["pipeline"]["conditioning"] = "class"
    (site / "generated" / "prompts" / "red-cat.json").write_text(json.dumps(manifest))
    render_site(site / "generated", site)
    figure = between(page_text(site, "red-cat"), 'id="pipeline-red-cat"', "</svg>\n<div")
    titles = re.findall(r'class="atlas-flow-title">([^<]+)<', figure)
    assert "Class vector" in titles and "Label" in titles
    assert "Tokenizer" not in titles and "Text encoder" not in titles and "Text representation" not in titles
    guidance = between(page_text(site, "red-cat"), 'data-panel="guidance"', "</section>")
    assert "with the class label and with no class (the null label)" in guidance
