"""Tests of the MNIST IDX reader on tiny synthetic files (never the real data set)."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from generator.builtin.digits.mnist import (
    load_mnist,
    read_idx_images,
    read_idx_labels,
    write_idx_images,
    write_idx_labels,
)
from generator.errors import UserError


def _digits(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n, dtype=np.uint8)


def _write_split(folder: Path, prefix: str, n: int, gz: bool = True, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    images, labels = _digits(n, seed)
    suffix = ".gz" if gz else ""
    write_idx_images(folder / f"{prefix}-images-idx3-ubyte{suffix}", images)
    write_idx_labels(folder / f"{prefix}-labels-idx1-ubyte{suffix}", labels)
    return images, labels


@pytest.mark.parametrize("gz", [True, False])
def test_load_roundtrip_gz_and_plain(tmp_path: Path, gz: bool) -> None:
    images, labels = _write_split(tmp_path, "train", 7, gz=gz)
    test_images, test_labels = _write_split(tmp_path, "t10k", 3, gz=gz, seed=1)
    train = load_mnist(tmp_path, "train")
    test = load_mnist(tmp_path, "test")
    assert train.images.shape == (7, 28, 28) and train.images.dtype == np.uint8
    np.testing.assert_array_equal(train.images, images)
    np.testing.assert_array_equal(train.labels, labels)
    np.testing.assert_array_equal(test.images, test_images)
    np.testing.assert_array_equal(test.labels, test_labels)
    as_float = train.images_as_float()
    assert tuple(as_float.shape) == (7, 1, 28, 28)
    assert float(as_float.min()) >= 0.0 and float(as_float.max()) <= 1.0
    assert abs(float(as_float[0, 0, 0, 0]) - images[0, 0, 0] / 255.0) < 1e-7
    assert train.labels_as_long().tolist() == labels.tolist()


def test_header_is_big_endian_idx(tmp_path: Path) -> None:
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / "x-images-idx3-ubyte"
    write_idx_images(path, images)
    raw = path.read_bytes()
    assert raw[:16] == bytes.fromhex("00000803 00000002 00000003 00000004".replace(" ", ""))
    np.testing.assert_array_equal(read_idx_images(path), images)


def test_torchvision_raw_layout(tmp_path: Path) -> None:
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    _write_split(raw, "train", 2, gz=False)
    assert len(load_mnist(tmp_path, "train")) == 2


def test_truncated_image_file_names_file(tmp_path: Path) -> None:
    path = tmp_path / "train-images-idx3-ubyte"
    write_idx_images(path, _digits(4)[0])
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(UserError, match="truncated") as info:
        read_idx_images(path)
    assert str(path) in str(info.value)


def test_truncated_gzip_names_file(tmp_path: Path) -> None:
    path = tmp_path / "train-images-idx3-ubyte.gz"
    write_idx_images(path, _digits(4)[0])
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(UserError, match="gzip") as info:
        read_idx_images(path)
    assert str(path) in str(info.value)


def test_wrong_magic(tmp_path: Path) -> None:
    labels_path = tmp_path / "labels"
    write_idx_labels(labels_path, np.zeros(30, dtype=np.uint8))
    with pytest.raises(UserError, match="magic number 0x00000801"):
        read_idx_images(labels_path)  # a label file passed as images
    images_path = tmp_path / "images"
    write_idx_images(images_path, np.zeros((1, 28, 28), dtype=np.uint8))
    with pytest.raises(UserError, match="magic number 0x00000803"):
        read_idx_labels(images_path)


def test_short_header_and_bad_label_range(tmp_path: Path) -> None:
    short = tmp_path / "short"
    short.write_bytes(b"\x00\x00\x08")
    with pytest.raises(UserError, match="too short"):
        read_idx_images(short)
    bad = tmp_path / "bad-labels"
    bad.write_bytes(struct.pack(">II", 0x801, 2) + bytes([3, 12]))
    with pytest.raises(UserError, match="label 12"):
        read_idx_labels(bad)


def test_extra_bytes_are_rejected(tmp_path: Path) -> None:
    path = tmp_path / "labels.gz"
    path.write_bytes(gzip.compress(struct.pack(">II", 0x801, 2) + bytes([1, 2, 3])))
    with pytest.raises(UserError, match="needs 10"):
        read_idx_labels(path)


def test_missing_files_and_count_mismatch(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        load_mnist(tmp_path / "nowhere")
    with pytest.raises(UserError, match="train-images-idx3-ubyte"):
        load_mnist(tmp_path)
    write_idx_images(tmp_path / "train-images-idx3-ubyte.gz", _digits(3)[0])
    write_idx_labels(tmp_path / "train-labels-idx1-ubyte.gz", _digits(2)[1])
    with pytest.raises(UserError, match="3 images .* 2 labels"):
        load_mnist(tmp_path)
