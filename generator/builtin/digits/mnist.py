"""Built-in models: a reader for the standard MNIST IDX files (the ones torchvision and keras cache).

The IDX format (LeCun et al., http://yann.lecun.com/exdb/mnist/) is a big-endian header followed by
raw bytes: magic ``0x00000803`` + count + rows + columns for images, ``0x00000801`` + count for labels.
Files may be gzip-compressed (``.gz``) or plain. Every malformed input is a :class:`UserError` with one
sentence that names the file, because users point ``--data`` at directories they filled themselves.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from generator.errors import UserError

IMAGES_MAGIC = 0x00000803  # unsigned byte, 3 dimensions
LABELS_MAGIC = 0x00000801  # unsigned byte, 1 dimension
SPLIT_PREFIX = {"train": "train", "test": "t10k"}


@dataclass(frozen=True)
class MnistSplit:
    """One MNIST split: ``images`` (N, 28, 28) uint8 in 0..255 and ``labels`` (N,) uint8 in 0..9."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def images_as_float(self) -> "torch.Tensor":  # noqa: F821 - torch is imported lazily
        """Images as a float32 tensor (N, 1, 28, 28) in [0, 1]."""
        import torch

        return torch.from_numpy(self.images.astype(np.float32) / 255.0).unsqueeze(1)

    def labels_as_long(self) -> "torch.Tensor":  # noqa: F821
        """Labels as an int64 tensor (N,)."""
        import torch

        return torch.from_numpy(self.labels.astype(np.int64))


def _read_bytes(path: Path) -> bytes:
    """Read a file, gunzipping it when its name ends in .gz or it starts with the gzip magic."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read MNIST file {path}: {exc.strerror or exc}") from exc
    if path.suffix == ".gz" or raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise UserError(f"MNIST file {path} is not a valid gzip file (truncated or corrupt): {exc}") from exc
    return raw


def read_idx_images(path: str | Path) -> np.ndarray:
    """Read an IDX3 image file into a (N, rows, cols) uint8 array, checking magic and size."""
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 16:
        raise UserError(f"MNIST image file {path} is too short to hold an IDX header ({len(data)} bytes).")
    magic, count, rows, cols = struct.unpack(">IIII", data[:16])
    if magic != IMAGES_MAGIC:
        raise UserError(
            f"MNIST image file {path} has magic number 0x{magic:08x}, expected 0x{IMAGES_MAGIC:08x} (IDX3 images)."
        )
    if rows == 0 or cols == 0:
        raise UserError(f"MNIST image file {path} declares empty images ({rows}x{cols}).")
    expected = 16 + count * rows * cols
    if len(data) != expected:
        raise UserError(
            f"MNIST image file {path} holds {len(data)} bytes but its header "
            f"({count} images of {rows}x{cols}) needs {expected}: the file is truncated or corrupt."
        )
    return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(count, rows, cols).copy()


def read_idx_labels(path: str | Path) -> np.ndarray:
    """Read an IDX1 label file into a (N,) uint8 array, checking magic, size and the 0..9 range."""
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 8:
        raise UserError(f"MNIST label file {path} is too short to hold an IDX header ({len(data)} bytes).")
    magic, count = struct.unpack(">II", data[:8])
    if magic != LABELS_MAGIC:
        raise UserError(
            f"MNIST label file {path} has magic number 0x{magic:08x}, expected 0x{LABELS_MAGIC:08x} (IDX1 labels)."
        )
    if len(data) != 8 + count:
        raise UserError(
            f"MNIST label file {path} holds {len(data)} bytes but its header ({count} labels) needs "
            f"{8 + count}: the file is truncated or corrupt."
        )
    labels = np.frombuffer(data, dtype=np.uint8, offset=8).copy()
    if labels.size and labels.max() > 9:
        raise UserError(f"MNIST label file {path} contains label {int(labels.max())}; digits must be 0..9.")
    return labels


def find_idx_file(directory: Path, stem: str) -> Path:
    """Locate ``stem`` or ``stem.gz`` in ``directory`` (also accepting torchvision's ``MNIST/raw`` layout)."""
    for folder in (directory, directory / "MNIST" / "raw", directory / "raw"):
        for name in (stem + ".gz", stem):
            candidate = folder / name
            if candidate.is_file():
                return candidate
    raise UserError(
        f"MNIST file {stem}(.gz) not found in {directory}; pass --data DIR pointing at a folder with the four "
        "standard MNIST IDX files (for example torchvision's MNIST/raw cache)."
    )


def load_mnist(directory: str | Path, split: str = "train") -> MnistSplit:
    """Load the ``train`` (60k) or ``test`` (10k) split of MNIST from a directory of IDX files."""
    if split not in SPLIT_PREFIX:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    directory = Path(directory)
    if not directory.is_dir():
        raise UserError(
            f"MNIST directory {directory} does not exist; pass --data DIR pointing at the four MNIST IDX files."
        )
    prefix = SPLIT_PREFIX[split]
    images_path = find_idx_file(directory, f"{prefix}-images-idx3-ubyte")
    labels_path = find_idx_file(directory, f"{prefix}-labels-idx1-ubyte")
    images = read_idx_images(images_path)
    labels = read_idx_labels(labels_path)
    if images.shape[0] != labels.shape[0]:
        raise UserError(
            f"MNIST image file {images_path} holds {images.shape[0]} images but label file {labels_path} "
            f"holds {labels.shape[0]} labels."
        )
    return MnistSplit(images=images, labels=labels)


def write_idx_images(path: str | Path, images: np.ndarray) -> None:
    """Write a (N, rows, cols) uint8 array as an IDX3 file (gzip when the name ends in .gz); for tests and slices."""
    images = np.ascontiguousarray(images, dtype=np.uint8)
    payload = struct.pack(">IIII", IMAGES_MAGIC, *images.shape) + images.tobytes()
    _write_bytes(Path(path), payload)


def write_idx_labels(path: str | Path, labels: np.ndarray) -> None:
    """Write a (N,) uint8 array as an IDX1 file (gzip when the name ends in .gz)."""
    labels = np.ascontiguousarray(labels, dtype=np.uint8)
    payload = struct.pack(">II", LABELS_MAGIC, labels.shape[0]) + labels.tobytes()
    _write_bytes(Path(path), payload)


def _write_bytes(path: Path, payload: bytes) -> None:
    """Write bytes, gzip-compressed (deterministically, mtime 0) when the name ends in .gz."""
    path.write_bytes(gzip.compress(payload, mtime=0) if path.suffix == ".gz" else payload)
