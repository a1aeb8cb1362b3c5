"""Bake stage: the checks of a prompt set against the disk and against its model, before any work starts.

Reading a prompt file reads nothing but the YAML (generator/spec/); what it names is checked here, each mistake
one ``FILE:LINE: message`` ``SpecError``:

- ``check_files``: every file and folder the sections name (``PromptSet.files``, in file order): input images
  and mask files exist, are PNG/JPEG/WebP within ``MAX_IMAGE_PIXELS`` (refused from the header) and masks match
  their image's size; the training weights and MNIST folders exist and hold the test files; a report is no folder;
- ``check_against_model``: image sizes a multiple of the model's, scheduler names known, prompts within the text
  encoder's token limit, anagrams and hybrids only on pixel-space models (unless ``allow_latent``).

``preflight`` runs both, files first, then the model's weights format and device, before the model loads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import UnidentifiedImageError

from generator.builtin.digits.mnist import find_idx_file
from generator.experiments.course.editing import PIXEL_SPACE_MESSAGE, PIXEL_SPACE_WHAT
from generator.experiments.course.inputs import IMAGE_FORMATS, ImageTooLarge, open_bounded_image
from generator.spec.experiments import ExperimentsSpec
from generator.spec.fields import SourceFile
from generator.spec.prompt_set import PromptSet, SpecError

MNIST_TEST_FILES = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def check_files(prompt_set: PromptSet) -> None:
    """Every file and folder the prompt file names, as the bake will read it (images from their header first)."""
    sizes: dict[str, tuple[int, int]] = {}
    for source in prompt_set.files:
        where = f"{prompt_set.path}:{source.line}"
        if source.kind == "image":
            sizes[source.image] = _image_size(where, source)
        elif source.kind == "mask":
            size, image_size = _image_size(where, source), sizes[source.image]
            if size != image_size:
                raise SpecError(f"{where}: mask {source.value!r} is {size[0]}x{size[1]} but image {source.image!r} is "
                                f"{image_size[0]}x{image_size[1]}; they must match")
        elif source.kind in ("folder", "mnist"):
            if not Path(source.path).is_dir():
                raise SpecError(f"{where}: {source.what} folder {source.value!r} does not exist "
                                f"(looked for {source.path})")
            for stem in MNIST_TEST_FILES if source.kind == "mnist" else ():
                try:
                    find_idx_file(Path(source.path), stem)
                except Exception as error:  # a UserError with the reader's own wording
                    raise SpecError(f"{where}: {error}") from None
        elif source.kind == "report" and Path(source.path).is_dir():
            raise SpecError(f"{where}: report {source.value!r} is a folder; name the JSON file")


def _image_size(where: str, source: SourceFile) -> tuple[int, int]:
    """The size of an existing, readable PNG/JPEG/WebP file within ``MAX_IMAGE_PIXELS`` (decoded once to be sure)."""
    what, value = source.what, source.value
    path = Path(source.path)
    if not path.is_file():
        raise SpecError(f"{where}: {what} {value!r} does not exist (looked for {path})")
    try:
        with open_bounded_image(path) as image:
            image_format = image.format
            size = image.size
            image.load()
    except ImageTooLarge as error:
        raise SpecError(f"{where}: {what} {value!r} {error}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        problem = str(error).splitlines()[0][:120] or type(error).__name__
        raise SpecError(f"{where}: cannot read {what} {value!r}: {problem}") from None
    if image_format not in IMAGE_FORMATS:
        raise SpecError(f"{where}: {what} {value!r} is {image_format}; use PNG, JPEG or WebP")
    return size


def check_against_model(prompt_set: PromptSet, limits: Any) -> None:
    """Model-dependent checks (size multiple, scheduler name, token limit, class labels), before loading it.

    ``limits`` is a ``generator.models.limits.ModelLimits``.
    """
    for prompt in prompt_set.prompts:
        where = f"{prompt_set.path}:{prompt.line}"
        s = prompt.settings
        if s.scheduler is not None and s.scheduler not in limits.schedulers:
            raise SpecError(f"{where}: unknown scheduler {s.scheduler!r}; choose one of {', '.join(limits.schedulers)}")
        for name, size in (("width", s.width), ("height", s.height)):
            if size is not None and size % limits.size_multiple:
                raise SpecError(f"{where}: {name} {size} is not a multiple of {limits.size_multiple}, which "
                                f"{prompt_set.model} needs")
        problem = limits.check_prompt(prompt.text)
        if problem:
            raise SpecError(f"{where}: prompt {prompt.id!r}: {problem}")
        if prompt.compare is not None:
            problem = limits.check_prompt(prompt.compare)
            if problem:
                raise SpecError(f"{where}: prompt {prompt.id!r} compare: {problem}")
    if prompt_set.experiments is not None:
        _check_experiments(prompt_set.path, prompt_set.experiments, limits, prompt_set.model)


def _check_experiments(path: Path, experiments: ExperimentsSpec, limits: Any, model: str) -> None:
    """Prompts within the model's token limit, scheduler known, anagrams/hybrids on pixels (before the model loads)."""
    if experiments.scheduler is not None and experiments.scheduler not in limits.schedulers:
        raise SpecError(f"{path}:{experiments.line}: unknown scheduler {experiments.scheduler!r}; choose one of "
                        f"{', '.join(limits.schedulers)}")
    if getattr(limits, "pixel_space", None) is False:  # the bake would refuse it after loading the model
        for experiment, entries in (("visual anagrams", experiments.anagrams), ("hybrid images", experiments.hybrids)):
            for entry in (e for e in entries if not e.allow_latent):
                line = experiments.prompt_lines.get(entry.prompts[0], experiments.line)
                message = PIXEL_SPACE_MESSAGE.format(experiment=experiment, model=model,
                                                     what=PIXEL_SPACE_WHAT[experiment])
                raise SpecError(f"{path}:{line}: {message}")
    for text, line in experiments.prompt_lines.items():
        problem = limits.check_prompt(text)
        if problem:
            raise SpecError(f"{path}:{line}: experiment prompt {text!r}: {problem}")


@dataclass(frozen=True)
class Preflight:
    """What the checks before a bake found: the model's limits and the weights format it will load."""

    limits: object  # generator.models.limits.ModelLimits
    weights_format: str


def preflight(prompt_set: PromptSet, *, device: str = "auto", dtype: str = "auto",
              allow_pickle: bool = False, memory: object = None) -> Preflight:
    """Every model-dependent check, without loading the model: a mistake raises one ``UserError`` line.
    ``memory``: the MemoryOptions the model will load with (generator/models/memory.py)."""
    from generator.devices import resolve_device
    from generator.models.common import resolve_dtype
    from generator.models.memory import MemoryOptions, check_memory_options
    from generator.models.registry import check_weights, model_limits

    check_files(prompt_set)  # first: a missing input image is its own mistake, whatever the model
    limits = model_limits(prompt_set.model)
    check_against_model(prompt_set, limits)
    resolve_dtype(dtype, resolve_device(device))
    check_memory_options(memory or MemoryOptions(), resolve_device(device))
    return Preflight(limits, check_weights(prompt_set.model, allow_pickle))
