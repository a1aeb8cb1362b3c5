"""Models stage: what a model accepts (sizes, token limit, labels), known without loading its weights.

Prompt files are validated against these limits before any model loads, so a prompt that is too long or a
size the model cannot produce fails in a second with one line, not after minutes of loading.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from generator.errors import UserError
from generator.models.tokens import truncated_words


@dataclass(frozen=True)
class ModelLimits:
    """Sizes, token limit and (class-conditional models) allowed labels of one model."""

    size_multiple: int
    max_tokens: int | None = None
    tokenizer: Callable[[], object] | None = None  # loads only the tokenizer
    labels: tuple[str, ...] | None = None
    fingerprint: str = ""  # changes when the weights change (part of the bake cache key)

    def check_prompt(self, text: str) -> str | None:
        """Why the model cannot take this prompt, or None."""
        if self.labels is not None:
            return None if text in self.labels else f"must be one of the labels {', '.join(self.labels)}"
        if self.tokenizer is not None and self.max_tokens is not None:
            cut = truncated_words(self.tokenizer(), text, self.max_tokens)
            if cut:
                return (
                    f"longer than the text encoder's {self.max_tokens} tokens; these words would be cut: "
                    + " ".join(cut)
                )
        return None


def diffusers_folder_limits(folder: Path) -> ModelLimits:
    """Limits of a Stable Diffusion folder (model_index.json, vae/, tokenizer/) from its config files."""
    from transformers import CLIPTokenizer

    vae_config = json.loads((folder / "vae" / "config.json").read_text())
    size_multiple = 2 ** (len(vae_config["block_out_channels"]) - 1)
    tokenizer_config = folder / "tokenizer" / "tokenizer_config.json"
    max_tokens = json.loads(tokenizer_config.read_text()).get("model_max_length", 77) if tokenizer_config.exists() else 77
    weights = sorted(p for p in folder.rglob("*") if p.suffix in (".safetensors", ".bin", ".json"))
    fingerprint = ";".join(f"{p.relative_to(folder)}:{p.stat().st_size}" for p in weights)
    return ModelLimits(
        size_multiple=size_multiple,
        fingerprint=hashlib.sha256(fingerprint.encode()).hexdigest()[:16],
        max_tokens=min(int(max_tokens), 77),
        tokenizer=lambda: CLIPTokenizer.from_pretrained(str(folder), subfolder="tokenizer"),
    )


def local_folder(id_or_path: str) -> Path:
    """The local folder of a diffusers model: the path itself, or its snapshot in the HF cache."""
    from generator.models.registry import HOW_TO_PROVIDE

    path = Path(id_or_path).expanduser()
    if path.is_dir():
        if not (path / "model_index.json").exists():
            raise UserError(f"{path} has no model_index.json, so it is not a diffusers model folder")
        return path
    try:
        from huggingface_hub import snapshot_download

        allow_download = os.environ.get("DIFFATLAS_ALLOW_DOWNLOAD") == "1"
        return Path(snapshot_download(id_or_path, local_files_only=not allow_download))
    except Exception:  # noqa: BLE001 - any failure here means "not available locally"
        raise UserError(f"model {id_or_path!r} is not on this machine; {HOW_TO_PROVIDE}") from None
