"""bench/joint_attention.py builds the released architectures: SD3 medium and Flux at their published sizes.

Counted on the meta device (nothing allocated), so the real-size benchmark's configs are checked in the suite:
SD3 medium's transformer has 2B parameters (Stability AI's model card), FLUX.1's 12B (Black Forest Labs). The
benchmark runs Flux with fewer blocks and scales its time linearly per block kind; that scaling is checked too.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_SPEC = importlib.util.spec_from_file_location(
    "bench_joint_attention", Path(__file__).resolve().parents[2] / "bench" / "joint_attention.py")
bench = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(bench)  # the benchmark script as a module (bench/ is not a package)


def test_sd3_medium_config_has_the_published_size() -> None:
    count = bench.parameter_count("sd3", (24, 0))
    assert count == pytest.approx(2.0e9, rel=0.02)  # "2 billion parameters"
    assert bench.sd3_config()["num_layers"] == 24 and bench.sd3_config()["caption_projection_dim"] == 1536


def test_flux_config_has_the_published_size_and_grows_linearly_with_blocks() -> None:
    full = bench.parameter_count("flux", bench.FLUX_BLOCKS)
    assert full == pytest.approx(12e9, rel=0.02)  # "a 12 billion parameter rectified flow transformer"
    base = bench.parameter_count("flux", (0, 0))
    double = bench.parameter_count("flux", (1, 0)) - base
    single = bench.parameter_count("flux", (0, 1)) - base
    assert double > 2 * single  # a double-stream block holds two streams' projections and MLPs
    assert bench.parameter_count("flux", (2, 4)) == base + 2 * double + 4 * single
    assert full == base + 19 * double + 38 * single


def test_reduced_flux_time_scales_per_block_kind() -> None:
    run = {"seconds": 10.0, "blocks_s": {"double": 2.0, "single": 4.0}}  # 4 s outside the blocks
    assert bench.scaled_seconds(run, (2, 4), (19, 38)) == pytest.approx(4 + 2 * 19 / 2 + 4 * 38 / 4)
