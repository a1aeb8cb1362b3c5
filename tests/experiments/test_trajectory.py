"""The trajectory experiment: frames per step, preview decoding of latent models."""

from __future__ import annotations

import torch

from generator.experiments.prompt.trajectory import TrajectoryRequest, preview_stride, run_trajectories


def test_preview_stride_keeps_frames_at_least_preview_size(tiny_sd):
    request = TrajectoryRequest(("a cat",), 3, 7.5, 0, 256, 256, "ddim")
    assert preview_stride(tiny_sd, request, 64) == 4  # 256 / 4 = 64 pixels, latent 32 / 4 = 8
    assert preview_stride(tiny_sd, request, 100) == 2
    assert preview_stride(tiny_sd, request, None) == 1


def test_preview_frames_are_smaller_and_final_is_full_size(tiny_sd):
    request = TrajectoryRequest(("a cat",), 3, 7.5, 0, 256, 192, "ddim")
    (small,) = run_trajectories(tiny_sd, request, preview=64)  # stride 2: latent 24 / 2 = 12 >= 8
    (full,) = run_trajectories(tiny_sd, request)
    assert small.noisy.shape == small.predicted.shape == (4, 3, 96, 128)
    assert full.noisy.shape == (4, 3, 192, 256)
    assert small.final_image.shape == full.final_image.shape == (3, 192, 256)
    torch.testing.assert_close(small.final_image, full.final_image)
    # same pictures at lower resolution: per-frame colour means agree (random weights: no finer structure)
    torch.testing.assert_close(small.predicted.mean(dim=(2, 3)), full.predicted.mean(dim=(2, 3)), atol=0.03, rtol=0)
    assert len(small.timesteps) == 3
