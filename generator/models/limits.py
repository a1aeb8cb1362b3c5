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

PICKLE_SUFFIXES = (".bin", ".ckpt", ".pt", ".pth")  # torch.load unpickles these: loading one can run its code
SAFETENSORS_HEADER_MOST = 100 * 2**20  # the format's own limit on the JSON header
# the one hint every 'model not found' error ends with
HOW_TO_PROVIDE = (
    "pass a local folder with model_index.json (e.g. --model /models/stable-diffusion-v1-5), or put the model in "
    "the Hugging Face cache (HF_HOME) beforehand; set DIFFATLAS_ALLOW_DOWNLOAD=1 to let diffusers download it on "
    "a machine with network access"
)


@dataclass(frozen=True)
class ModelLimits:
    """Sizes, token limit and (class-conditional models) allowed labels of one model."""

    size_multiple: int
    max_tokens: int | None = None
    tokenizer: Callable[[], object] | None = None  # loads only the tokenizer
    labels: tuple[str, ...] | None = None
    fingerprint: str = ""  # changes when the weights change (part of the bake cache key)
    pixel_space: bool | None = None  # None: not known before loading (the registry fills it in)
    flow: bool = False  # a flow-matching model (SD3, Flux): only the flow schedulers fit it

    @property
    def schedulers(self) -> tuple[str, ...]:
        """The scheduler names that fit this model's family (checked before it loads)."""
        from generator.models.schedulers import FLOW_SCHEDULERS, SCHEDULERS

        return tuple(FLOW_SCHEDULERS if self.flow else SCHEDULERS)

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
    """Limits of a Stable Diffusion folder (model_index.json, vae/, tokenizer/) from its config files; the
    tokenizer is the class its own config names (CLIP's for SD releases, a word-level one for ours)."""
    from transformers import AutoTokenizer

    vae_config = json.loads((folder / "vae" / "config.json").read_text())
    size_multiple = 2 ** (len(vae_config["block_out_channels"]) - 1)
    tokenizer_config = folder / "tokenizer" / "tokenizer_config.json"
    max_tokens = json.loads(tokenizer_config.read_text()).get("model_max_length", 77) if tokenizer_config.exists() else 77
    weights = sorted(p for p in folder.rglob("*") if p.suffix in (".safetensors", ".json", *PICKLE_SUFFIXES))
    fingerprint = ";".join(f"{p.relative_to(folder)}:{p.stat().st_size}" for p in weights)
    return ModelLimits(
        size_multiple=size_multiple,
        fingerprint=hashlib.sha256(fingerprint.encode()).hexdigest()[:16],
        max_tokens=min(int(max_tokens), 77),
        tokenizer=lambda: AutoTokenizer.from_pretrained(str(folder), subfolder="tokenizer"),
    )


def local_folder(id_or_path: str) -> Path:
    """The local folder of a diffusers model: the path itself, or its snapshot in the HF cache."""

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


def safetensors_problem(path: Path) -> str | None:
    """Why a .safetensors file cannot be whole (broken header, cut short, trailing bytes), from its header only."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            return f"is cut short ({size} bytes, not even a header)"
        header_size = int.from_bytes(prefix, "little")
        if header_size > min(SAFETENSORS_HEADER_MOST, size - 8):
            return "has a broken header (its length field points past the end of the file)"
        try:
            header = json.loads(handle.read(header_size))
            ends = [entry["data_offsets"][1] for name, entry in header.items() if name != "__metadata__"]
        except (ValueError, TypeError, KeyError, IndexError, AttributeError):
            return "has a broken header (not the JSON table of tensors safetensors writes)"
    expected = 8 + header_size + max(ends, default=0)
    if expected != size:
        return f"is {'cut short' if size < expected else 'longer than its header says'} ({size} bytes, its header describes {expected})"
    return None


def inspect_weights(folder: Path, allow_pickle: bool = False) -> str:
    """Which format loading ``folder`` reads ('safetensors' or 'pickle (unet, vae)'), checked without loading it.

    A component (subfolder) with a .safetensors file loads that, even when it has a pickle too; one with only
    pickled weights is refused unless ``allow_pickle`` (the CLI's --allow-pickle). Every .safetensors file that
    will load must have a whole header and the length it declares (a truncated download fails here, by name).
    """
    pickled_parts = []
    for component in sorted(p for p in folder.iterdir() if p.is_dir()):
        files = sorted(f for f in component.iterdir() if f.is_file())
        safetensors = [f for f in files if f.name.endswith(".safetensors")]
        pickles = [f for f in files if f.suffix in PICKLE_SUFFIXES]
        if safetensors:
            for file in safetensors:
                problem = safetensors_problem(file)
                if problem:
                    raise UserError(f"{file} {problem}; copy or download the model again")
        elif pickles:
            if not allow_pickle:
                raise UserError(
                    f"{pickles[0]}: pickled weights can run code when they load, so they are refused; convert the "
                    "folder to safetensors, or pass --allow-pickle if you trust where it came from"
                )
            pickled_parts.append(component.name)
    return f"pickle ({', '.join(pickled_parts)})" if pickled_parts else "safetensors"
