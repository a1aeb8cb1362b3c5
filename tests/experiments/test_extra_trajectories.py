"""Prompt pairs, guidance/seed variants (shared noise, stored once) and the PCA trajectory map."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from generator.bake.manifest import manifest_assets
from generator.bake.store import AssetStore
from generator.experiments.prompt.compare import ExtraTrajectory, run_many, word_diff
from generator.experiments.prompt.projection import fit_unit_square, pca_2d
from generator.experiments.prompt.trajectory import TrajectoryRequest, run_trajectories
from generator.spec.prompt_set import JumpSettings, PromptSpec, Settings

REQUEST = TrajectoryRequest(("a red cat",), 2, 7.5, 0, 64, 64, "ddim")


def test_pair_and_variants_start_from_bit_identical_noise(tiny_sd):
    (main,) = run_trajectories(tiny_sd, REQUEST)
    runs = [ExtraTrajectory("a blue cat", 0, 7.5), ExtraTrajectory("a red cat", 0, 1.0),
            ExtraTrajectory("a red cat", 1, 7.5), ExtraTrajectory("a red cat", 1, 1.0)]
    pair, guidance_1, seed_1, seed_1_guidance_1 = run_many(tiny_sd, REQUEST, runs)
    # frame 0 of x_t is the start noise itself (DDIM: init sigma 1, no input scaling)
    assert torch.equal(pair.noisy_latents[0], main.noisy_latents[0])
    assert torch.equal(guidance_1.noisy_latents[0], main.noisy_latents[0])
    assert torch.equal(seed_1.noisy_latents[0], seed_1_guidance_1.noisy_latents[0])
    assert not torch.equal(seed_1.noisy_latents[0], main.noisy_latents[0])
    # the pair really is another prompt, and guidance really changed the denoising
    assert not torch.allclose(pair.predicted_latents[0], main.predicted_latents[0])
    assert not torch.allclose(guidance_1.predicted_latents[1], main.predicted_latents[1])


def test_word_diff_marks_only_the_changed_words():
    a, b = word_diff("a smiling, red cat chewing gum", "A smiling blue cat chewing gum loudly")
    assert [w["word"] for w in a if w["changed"]] == ["red"]
    assert [w["word"] for w in b if w["changed"]] == ["blue", "loudly"]


def test_probe_bake_stores_identical_strips_once(tiny_sd, tmp_path):
    from generator.bake.prompt.extra_trajectories import bake_extra_trajectories
    from generator.bake.prompt.trajectory import bake_trajectory

    settings = Settings(steps=2, guidance=7.5, seed=0, width=64, height=64, scheduler="ddim", preview_size=32,
                        jumps=JumpSettings(every=1, steps=(1,)), guidances=(1.0, 7.5), seeds=(0,))
    prompt = PromptSpec("cat", "a red cat", settings, compare="a blue cat")
    request = replace(REQUEST, prompts=(prompt.text,))
    (trajectory,) = run_trajectories(tiny_sd, request, preview=32)
    store = AssetStore(tmp_path)
    main = bake_trajectory(trajectory, store, 32)
    files_before = set(store.folder.iterdir())
    sections = bake_extra_trajectories(tiny_sd, prompt, request, trajectory, store)
    json.dumps(sections)  # plain JSON
    own = next(i for i in sections["variants"]["items"] if (i["seed"], i["guidance"]) == (0, 7.5))
    assert own["noisy"]["src"] == main["trajectory"]["noisy"]["src"]
    assert own["predicted"]["src"] == main["trajectory"]["predicted"]["src"]
    assert own["final"]["src"] == main["final"]["src"]
    new_files = set(store.folder.iterdir()) - files_before
    # new: the pair's two strips + final + difference heat maps and the guidance-1 variant's two strips + final,
    # nothing twice (the main predicted strip the heat map is taken from is not stored again), plus the guidance
    # view's sheets of the pair's B and of that variant (the prompt's own variant has none: the page's are its own)
    guidance = {src for src in manifest_assets(sections["compare"]["guidance_parts"])}
    guidance |= {src for item in sections["variants"]["items"] for src in manifest_assets(item.get("guidance_parts"))}
    assert "guidance_parts" not in own and guidance
    assert {f"assets/{path.name}" for path in new_files} - guidance == {
        sections["compare"][key]["src"] for key in ("noisy", "predicted", "final", "difference")} | {
        variant[key]["src"] for variant in sections["variants"]["items"] if variant is not own
        for key in ("noisy", "predicted", "final")}
    assert len(new_files) == 7 + len(guidance)
    assert sorted(p["kind"] for p in sections["map"]["paths"]) == ["compare", "main", "variant"]
    assert all(len(p["points"]) == 3 for p in sections["map"]["paths"])
    assert len(sections["compare"]["x0_distance"]) == 3 and sections["compare"]["x0_distance"][1] > 0


def test_pca_of_an_ellipse_in_a_plane_of_a_high_dimensional_space():
    rng = np.random.default_rng(0)
    basis, _ = np.linalg.qr(rng.normal(size=(64, 2)))  # two orthonormal directions u, v in R^64
    theta = np.linspace(0, 2 * np.pi, 40, endpoint=False)
    offset = rng.normal(size=64)
    points = offset + np.outer(3 * np.cos(theta), basis[:, 0]) + np.outer(np.sin(theta), basis[:, 1])
    projection = pca_2d(points)
    # the long axis is u and the short one v (up to sign), recovering (3 cos, sin) exactly
    assert abs(abs(projection.axes[0] @ basis[:, 0]) - 1) < 1e-9
    assert abs(abs(projection.axes[1] @ basis[:, 1]) - 1) < 1e-9
    np.testing.assert_allclose(np.abs(projection.coordinates[:, 0]), np.abs(3 * np.cos(theta)), atol=1e-9)
    np.testing.assert_allclose(np.abs(projection.coordinates[:, 1]), np.abs(np.sin(theta)), atol=1e-9)
    assert projection.explained == pytest.approx((0.9, 0.1), abs=1e-9)  # variances 9/2 and 1/2
    assert projection.axes[0][np.argmax(np.abs(projection.axes[0]))] > 0  # deterministic sign


def test_pca_of_points_on_a_line_and_unit_square_fit():
    direction = np.zeros(10)
    direction[3], direction[7] = 0.6, 0.8
    t = np.array([0.0, 1.0, 2.0, 5.0])
    projection = pca_2d(np.outer(t, direction) + 1.0)
    np.testing.assert_allclose(projection.coordinates[:, 0], t - t.mean(), atol=1e-12)  # sign: 0.8 > 0
    np.testing.assert_allclose(projection.coordinates[:, 1], 0, atol=1e-12)
    assert projection.explained[0] == pytest.approx(1.0)
    unit = fit_unit_square(projection.coordinates)
    assert unit[:, 0].min() == pytest.approx(0.05) and unit[:, 0].max() == pytest.approx(0.95)
    np.testing.assert_allclose(unit[:, 1], 0.5)  # one scale for both axes: the flat direction stays centred


def test_difference_maps_are_the_mean_absolute_difference_over_the_channels():
    from generator.experiments.prompt.compare import difference_maps

    a = np.array([[[[0, 0, 0], [255, 255, 255], [10, 20, 30], [7, 7, 7]]]], dtype=np.uint8)  # (1 frame, 1 x 4, RGB)
    b = np.array([[[[255, 0, 0], [255, 255, 255], [12, 19, 30], [6, 7, 7]]]], dtype=np.uint8)
    maps = difference_maps(a, b)
    assert maps.dtype == np.uint8 and maps.shape == (1, 1, 4)
    assert maps.tolist() == [[[85, 0, 1, 0]]]  # 255/3; equal; (2 + 1 + 0)/3; 1/3 rounds to 0
    assert difference_maps(b, a).tolist() == maps.tolist()  # |a - b|: no wrap-around of unsigned bytes
    with pytest.raises(ValueError):
        difference_maps(a, b[:, :, :2])


def _sheet_frames(path, entry) -> np.ndarray:
    """Frames of a stored sheet, cut by the manifest entry's grid, (count, h, w, channels)."""
    from PIL import Image

    with Image.open(path) as sheet:
        pixels = np.asarray(sheet)
    w, h, columns = entry["frame_width"], entry["frame_height"], entry["columns"]
    return np.stack([pixels[i // columns * h:(i // columns + 1) * h, i % columns * w:(i % columns + 1) * w]
                     for i in range(entry["count"])])


def test_pair_difference_heat_map_is_x0_a_minus_x0_b_of_the_stored_frames(tiny_sd, tmp_path):
    from generator.bake.prompt.extra_trajectories import bake_extra_trajectories
    from generator.bake.prompt.trajectory import bake_trajectory
    from generator.models.base import to_pil

    settings = Settings(steps=3, guidance=7.5, seed=0, width=64, height=64, scheduler="ddim", preview_size=64,
                        jumps=None)
    prompt = PromptSpec("cat", "a red cat", settings, compare="a blue dog")
    request = replace(REQUEST, prompts=(prompt.text,), steps=3)
    (trajectory,) = run_trajectories(tiny_sd, request, preview=64)
    store = AssetStore(tmp_path)
    main = bake_trajectory(trajectory, store, 64)["trajectory"]["predicted"]
    pair = bake_extra_trajectories(tiny_sd, prompt, request, trajectory, store)["compare"]
    difference = pair["difference"]
    assert difference["src"].endswith(".png") and difference["count"] == 4 == main["count"]
    assert {k: difference[k] for k in ("frame_width", "frame_height", "columns")} == \
        {k: main[k] for k in ("frame_width", "frame_height", "columns")}
    x0_a = _sheet_frames(tmp_path / main["src"], main).astype(float)  # as stored: what the reader sees
    x0_b = _sheet_frames(tmp_path / pair["predicted"]["src"], pair["predicted"]).astype(float)
    # the stored frames are the trajectory's own predicted x0 (frames kept at their size are lossless)
    assert np.array_equal(x0_a, np.stack([np.asarray(f) for f in to_pil(trajectory.predicted)]))
    heat = _sheet_frames(tmp_path / difference["src"], difference)
    assert heat.ndim == 3  # one grayscale channel
    expected = np.round(np.abs(x0_a - x0_b).mean(axis=-1))
    assert np.array_equal(heat, expected)
    assert heat.max() > 0  # the two prompts do differ
    assert difference["mean"] == pytest.approx([m / 255 for m in expected.mean(axis=(1, 2))], abs=1e-4)
    assert len(pair["x0_distance"]) == 4


def test_pair_and_unconditional_variants_are_judged_with_their_own_expectations(tiny_sd, tmp_path, monkeypatch):
    import generator.bake.prompt.extra_trajectories as extra
    from generator.spec.fields import Expectation

    seen = []
    monkeypatch.setattr(extra, "judged", lambda entry, adapter, asked, image, expect=None: seen.append((asked, expect))
                        or entry)
    first, second = Expectation("fail", "first"), Expectation("fail", "second")
    settings = Settings(steps=1, guidance=7.5, seed=0, width=64, height=64, scheduler="ddim", preview_size=32,
                        jumps=None, guidances=(0.0,), seeds=())
    prompt = PromptSpec("cat", "a red cat", settings, compare="a blue cat", expect=first, compare_expect=second)
    request = replace(REQUEST, prompts=(prompt.text,), steps=1)
    (trajectory,) = run_trajectories(tiny_sd, request, preview=32)
    sections = bake_extra_trajectories_of(prompt, request, trajectory, tiny_sd, tmp_path)
    assert seen[0] == ("a blue cat", second)  # the pair: its own text and its own expectation
    by_guidance = {item["guidance"]: expect for item, (_, expect) in zip(sections["variants"]["items"], seen[1:])}
    assert by_guidance[7.5] is first  # the prompt's own expectation
    assert by_guidance[0.0].outcome == "fail" and "unconditional" in by_guidance[0.0].reason


def bake_extra_trajectories_of(prompt, request, trajectory, adapter, folder) -> dict:
    """The extra sections of one prompt, stored in ``folder``."""
    from generator.bake.prompt.extra_trajectories import bake_extra_trajectories

    return bake_extra_trajectories(adapter, prompt, request, trajectory, AssetStore(folder))
