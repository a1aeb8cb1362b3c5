"""Spec stage: the ``experiments:`` section of a prompt file (course experiments), validated in one place.

Parsed by ``generator.spec.prompt_set.load_prompt_set``; every mistake is one ``FILE:LINE: message`` ``SpecError``
raised before any model loads, including unreadable images and masks of the wrong size. Image paths are
relative to the prompt file. See README.md, "Prompt file: experiments", for the format.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from generator.spec.prompt_set import Expectation, parse_expectation

IMAGE_FORMATS = {"PNG", "JPEG", "WEBP"}
# 8192 x 8192: above any phone or camera photo a course uses (48-50 MP), below PIL's own bomb warning (89 MP);
# a decoded image this size is 200 MB of RGB, and every input is resized to the model's size anyway
MAX_IMAGE_PIXELS = 8192 * 8192
MAX_STEPS = 1000
SDEDIT_START_INDICES = (1, 3, 5, 7, 10, 20)
NEUTRAL_PROMPT = "a high quality photo"


class ImageTooLarge(ValueError):
    """An image whose header declares more than ``MAX_IMAGE_PIXELS`` (a decompression bomb, or just too big)."""


def open_bounded_image(path: str | Path) -> Image.Image:
    """``Image.open`` (which reads only the header), refused before decoding when it has too many pixels."""
    try:
        with warnings.catch_warnings():  # PIL warns past 89 MP; ours is the one message, below
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
    except Image.DecompressionBombError as error:  # PIL's own limit (2 x 89 MP), hit before ours can be
        raise ImageTooLarge(f"is too large to open ({str(error).splitlines()[0][:120]})") from None
    width, height = image.size
    if width * height > MAX_IMAGE_PIXELS:
        image.close()
        raise ImageTooLarge(f"is {width}x{height} ({width * height / 1e6:.1f} megapixels); at most "
                            f"{MAX_IMAGE_PIXELS / 1e6:.1f} megapixels ({MAX_IMAGE_PIXELS:,} pixels) are allowed")
    return image


@dataclass(frozen=True)
class MaskSpec:
    """Where to inpaint: a file (white = generate) or a box/ellipse in fractions [left, top, right, bottom]."""

    shape: str  # "file", "box" or "ellipse"
    file: str | None = None
    bounds: tuple[float, float, float, float] | None = None


@dataclass(frozen=True)
class Run:
    """Settings every experiment entry may override (resolved against the section, then the file defaults;
    steps and guidance left unset everywhere are the model's measured defaults, filled in at bake time)."""

    steps: int | None
    guidance: float | None
    seed: int

    def with_model_defaults(self, adapter: Any) -> Run:
        """Unset steps and guidance filled in from the model's recorded defaults."""
        return replace(self, steps=self.steps or adapter.default_steps,
                       guidance=adapter.default_guidance if self.guidance is None else self.guidance)


@dataclass(frozen=True)
class ForwardSpec:
    image: str
    timesteps: tuple[int, ...]
    seed: int


@dataclass(frozen=True)
class DenoiseSpec:
    image: str
    prompt: str
    timesteps: tuple[int, ...]
    blur_sigmas: tuple[float, ...]
    start_index: int | None
    run: Run


@dataclass(frozen=True)
class SamplesSpec:
    prompt: str
    step_counts: tuple[int, ...]
    guidance_scales: tuple[float, ...]
    run: Run
    expect: Expectation | None = None


@dataclass(frozen=True)
class SDEditSpec:
    id: str
    image: str
    prompt: str
    start_indices: tuple[int, ...]
    run: Run
    expect: Expectation | None = None


@dataclass(frozen=True)
class InpaintSpec:
    id: str
    image: str
    mask: MaskSpec
    prompt: str
    run: Run
    expect: Expectation | None = None


@dataclass(frozen=True)
class ViewsSpec:
    """An anagram or hybrid entry (kernel_size/sigma only matter for hybrids)."""

    id: str
    prompts: tuple[str, str]
    allow_latent: bool
    run: Run
    kernel_size: int = 33
    sigma: float = 2.0
    expect: Expectation | None = None


@dataclass(frozen=True)
class ExperimentsSpec:
    """The whole ``experiments:`` section; ``inputs`` maps names to absolute image paths."""

    title: str
    scheduler: str | None
    inputs: dict[str, str]
    forward: ForwardSpec | None = None
    denoise: DenoiseSpec | None = None
    samples: SamplesSpec | None = None
    sdedit: tuple[SDEditSpec, ...] = ()
    inpaint: tuple[InpaintSpec, ...] = ()
    anagrams: tuple[ViewsSpec, ...] = ()
    hybrids: tuple[ViewsSpec, ...] = ()
    line: int = 0
    prompt_lines: dict[str, int] = field(default_factory=dict)  # prompt text -> line, for model checks

    def prompts(self) -> list[str]:
        """Every prompt the section uses (checked against the model's token limit)."""
        return list(self.prompt_lines)

    def spec_hash(self, model: str) -> str:
        """Hash of the section and of the bytes of every input image and mask file (the bake cache key)."""
        digest = hashlib.sha256(json.dumps([model, asdict(self)], sort_keys=True, default=str).encode())
        files = list(self.inputs.values()) + [m.mask.file for m in self.inpaint if m.mask.file]
        for path in sorted(files):
            digest.update(Path(path).read_bytes())
        return digest.hexdigest()[:16]


SECTION_KEYS = {"title", "seed", "steps", "guidance", "scheduler", "inputs", "forward", "denoise", "samples",
                "sdedit", "inpaint", "anagrams", "hybrids"}
RUN_KEYS = {"steps", "guidance", "seed"}
EXPECT_KEYS = {"expect", "reason"}  # a figure that shows a failure on purpose (generator/spec/prompt_set.py Expectation)


class _Parser:
    """Walks the section with the located values of ``generator.spec.prompt_set._Located`` (for file:line errors)."""

    def __init__(self, located: Any, base_dir: Path):
        self.located = located
        self.base_dir = base_dir

    def error(self, key: tuple, message: str) -> Exception:
        return self.located.error(key, message)

    def keys(self, key: tuple, data: Any, allowed: set[str], what: str) -> dict:
        if not isinstance(data, dict):
            raise self.error(key, f"{what} must be a mapping")
        for name in data:
            if name not in allowed:
                raise self.error(key + (name,), f"unknown key {name!r} in {what}; allowed: {', '.join(sorted(allowed))}")
        return data

    def chapter(self, root: tuple, data: Any, allowed: set[str]) -> tuple[dict, dict[str, Any]]:
        """A chapter section (``training:``, ``faithfulness:``; empty means defaults) and its line and title values."""
        data = self.keys(root, data if data is not None else {}, allowed, root[-1])
        values: dict[str, Any] = {"line": self.located.lines.get(root, 1)}
        if "title" in data:
            values["title"] = self.text(root + ("title",), data["title"], "title")
        return data, values

    def number(self, key: tuple, value: Any, name: str, *, integer: bool, low: float, high: float | None = None,
               low_open: bool = False) -> float | int:
        types = (int,) if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, types):
            raise self.error(key, f"{name} must be {'an integer' if integer else 'a number'}, got {value!r}")
        too_low = value <= low if low_open else value < low
        if too_low or (high is not None and value > high):
            bound = f"> {low}" if low_open else f">= {low}"
            raise self.error(key, f"{name} must be {bound}" + (f" and <= {high}" if high is not None else "") + f" (got {value!r})")
        return value if integer else float(value)

    def numbers(self, key: tuple, value: Any, name: str, **kwargs: Any) -> tuple:
        if not isinstance(value, list) or not value:
            raise self.error(key, f"{name} must be a non-empty list")
        return tuple(self.number(key + (i,), v, name, **kwargs) for i, v in enumerate(value))

    def text(self, key: tuple, value: Any, name: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.error(key, f"{name} must be a non-empty string")
        return value.strip()

    def run(self, key: tuple, data: dict, base: Run) -> Run:
        steps = self.number(key + ("steps",), data["steps"], "steps", integer=True, low=1, high=MAX_STEPS) if "steps" in data else base.steps
        guidance = self.number(key + ("guidance",), data["guidance"], "guidance", integer=False, low=0) if "guidance" in data else base.guidance
        seed = self.number(key + ("seed",), data["seed"], "seed", integer=True, low=0) if "seed" in data else base.seed
        return Run(steps, guidance, seed)

    def image_ref(self, key: tuple, value: Any, inputs: dict[str, str]) -> str:
        if not isinstance(value, str) or value not in inputs:
            known = ", ".join(sorted(inputs)) or "none defined"
            raise self.error(key, f"image {value!r} is not one of the names under experiments.inputs ({known})")
        return value

    def image_file(self, key: tuple, value: Any, what: str) -> tuple[str, tuple[int, int]]:
        """An existing, readable PNG/JPEG/WebP file relative to the prompt file; its path and size."""
        if not isinstance(value, str) or not value:
            raise self.error(key, f"{what} must be a file path (relative to the prompt file)")
        path = (self.base_dir / value).resolve()
        if not path.is_file():
            raise self.error(key, f"{what} {value!r} does not exist (looked for {path})")
        try:
            with open_bounded_image(path) as image:
                image_format = image.format
                size = image.size
                image.load()
        except ImageTooLarge as error:
            raise self.error(key, f"{what} {value!r} {error}") from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
            raise self.error(key, f"cannot read {what} {value!r}: {str(error).splitlines()[0][:120] or type(error).__name__}") from None
        if image_format not in IMAGE_FORMATS:
            raise self.error(key, f"{what} {value!r} is {image_format}; use PNG, JPEG or WebP")
        return str(path), size

    def ident(self, key: tuple, data: dict, default: str, seen: set[str]) -> str:
        import re

        value = data.get("id", default)
        if not isinstance(value, str) or not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", value):
            raise self.error(key + ("id",), f"id {value!r} must be a slug: lowercase letters, digits, '-' or '_'")
        if value in seen:
            raise self.error(key + ("id",), f"duplicate experiment id {value!r}")
        seen.add(value)
        return value

    def entries(self, key: tuple, value: Any, name: str) -> list[dict]:
        if isinstance(value, dict):  # one entry may be written without the list
            return [value]
        if not isinstance(value, list) or not value:
            raise self.error(key, f"{name} must be a list of entries (or one mapping)")
        return value


def parse_experiments(located: Any, data: Any, base_dir: Path, defaults: Any) -> ExperimentsSpec:
    """The validated ``experiments:`` section; ``defaults`` is the file's ``Settings``."""
    p = _Parser(located, base_dir)
    root = ("experiments",)
    data = p.keys(root, data if data is not None else {}, SECTION_KEYS, "experiments")
    base = p.run(root, data, Run(defaults.steps, defaults.guidance, defaults.seed))
    scheduler = data.get("scheduler", defaults.scheduler)
    if scheduler is not None and not isinstance(scheduler, str):
        raise p.error(root + ("scheduler",), "scheduler must be a string")
    title = p.text(root + ("title",), data["title"], "title") if "title" in data else "Course experiments"
    prompt_lines: dict[str, int] = {}

    def prompt(key: tuple, value: Any, name: str = "prompt") -> str:
        text = p.text(key, value, name)
        prompt_lines.setdefault(text, located.lines.get(key, 1))
        return text

    inputs_data = p.keys(root + ("inputs",), data.get("inputs", {}) or {}, set(data.get("inputs", {}) or {}), "experiments.inputs")
    inputs, sizes = {}, {}
    for name, value in inputs_data.items():
        inputs[name], sizes[name] = p.image_file(root + ("inputs", name), value, f"input image {name!r}")

    spec: dict[str, Any] = {}
    if "forward" in data:
        key = root + ("forward",)
        d = p.keys(key, data["forward"], {"image", "timesteps", "seed"}, "forward")
        spec["forward"] = ForwardSpec(
            p.image_ref(key + ("image",), d.get("image"), inputs),
            p.numbers(key + ("timesteps",), d.get("timesteps", [250, 500, 750]), "timesteps", integer=True, low=0, high=MAX_STEPS - 1),
            p.run(key, d, base).seed,
        )
    if "denoise" in data:
        key = root + ("denoise",)
        d = p.keys(key, data["denoise"], {"image", "prompt", "timesteps", "blur_sigmas", "start_index"} | RUN_KEYS, "denoise")
        run = p.run(key, d, base)
        start = d.get("start_index")
        if start is not None:
            start = p.number(key + ("start_index",), start, "start_index", integer=True, low=0, high=(run.steps or MAX_STEPS) - 1)
        spec["denoise"] = DenoiseSpec(
            p.image_ref(key + ("image",), d.get("image"), inputs),
            prompt(key + ("prompt",), d.get("prompt", NEUTRAL_PROMPT)),
            p.numbers(key + ("timesteps",), d.get("timesteps", [250, 500, 750]), "timesteps", integer=True, low=1, high=MAX_STEPS - 1),
            p.numbers(key + ("blur_sigmas",), d.get("blur_sigmas", [0.5, 1, 2, 3]), "blur_sigmas", integer=False, low=0, high=20, low_open=True),
            start, run,
        )
    if "samples" in data:
        key = root + ("samples",)
        d = p.keys(key, data["samples"], {"prompt", "step_counts", "guidance_scales"} | RUN_KEYS | EXPECT_KEYS, "samples")
        spec["samples"] = SamplesSpec(
            prompt(key + ("prompt",), d.get("prompt", NEUTRAL_PROMPT)),
            p.numbers(key + ("step_counts",), d.get("step_counts", [10, 20, 100]), "step_counts", integer=True, low=1, high=MAX_STEPS),
            p.numbers(key + ("guidance_scales",), d.get("guidance_scales", [0, 1, 3, 7]), "guidance_scales", integer=False, low=0),
            p.run(key, d, base),
            parse_expectation(p, key, d),
        )
    seen: set[str] = set()
    sdedit = []
    for i, d in enumerate(p.entries(root + ("sdedit",), data.get("sdedit", []), "sdedit") if "sdedit" in data else []):
        key = root + ("sdedit", i)
        d = p.keys(key, d, {"id", "image", "prompt", "start_indices"} | RUN_KEYS | EXPECT_KEYS, "an sdedit entry")
        run = p.run(key, d, base)
        starts = p.numbers(key + ("start_indices",), d.get("start_indices", list(SDEDIT_START_INDICES)), "start_indices",
                           integer=True, low=0, high=(run.steps or MAX_STEPS) - 1)
        image = p.image_ref(key + ("image",), d.get("image"), inputs)
        sdedit.append(SDEditSpec(p.ident(key, d, f"sdedit-{image}", seen), image,
                                 prompt(key + ("prompt",), d.get("prompt", NEUTRAL_PROMPT)), starts, run,
                                 parse_expectation(p, key, d)))
    inpaint = []
    for i, d in enumerate(p.entries(root + ("inpaint",), data.get("inpaint", []), "inpaint") if "inpaint" in data else []):
        key = root + ("inpaint", i)
        d = p.keys(key, d, {"id", "image", "mask", "prompt"} | RUN_KEYS | EXPECT_KEYS, "an inpaint entry")
        image = p.image_ref(key + ("image",), d.get("image"), inputs)
        mask = _mask(p, key + ("mask",), d.get("mask"), image, sizes[image])
        inpaint.append(InpaintSpec(p.ident(key, d, f"inpaint-{image}", seen), image, mask,
                                   prompt(key + ("prompt",), d.get("prompt", NEUTRAL_PROMPT)), p.run(key, d, base),
                                   parse_expectation(p, key, d)))
    views: dict[str, list[ViewsSpec]] = {"anagrams": [], "hybrids": []}
    for section in views:
        allowed = {"id", "prompts", "allow_latent"} | RUN_KEYS | EXPECT_KEYS | ({"kernel_size", "sigma"} if section == "hybrids" else set())
        for i, d in enumerate(p.entries(root + (section,), data.get(section, []), section) if section in data else []):
            key = root + (section, i)
            d = p.keys(key, d, allowed, f"an entry of {section}")
            pair = d.get("prompts")
            if not isinstance(pair, list) or len(pair) != 2:
                raise p.error(key + ("prompts",), f"{section} need 'prompts': a list of exactly two prompts")
            texts = (prompt(key + ("prompts", 0), pair[0]), prompt(key + ("prompts", 1), pair[1]))
            allow = d.get("allow_latent", False)
            if not isinstance(allow, bool):
                raise p.error(key + ("allow_latent",), "allow_latent must be true or false")
            extra = {}
            if section == "hybrids":
                size = p.number(key + ("kernel_size",), d.get("kernel_size", 33), "kernel_size", integer=True, low=1, high=255)
                if size % 2 == 0:
                    raise p.error(key + ("kernel_size",), f"kernel_size must be odd (got {size})")
                extra = {"kernel_size": size, "sigma": p.number(key + ("sigma",), d.get("sigma", 2.0), "sigma", integer=False, low=0, low_open=True)}
            ident = p.ident(key, d, f"{section[:-1]}-{i + 1}", seen)
            views[section].append(ViewsSpec(ident, texts, allow, p.run(key, d, base), **extra,
                                            expect=parse_expectation(p, key, d)))
    return ExperimentsSpec(
        title=title, scheduler=scheduler, inputs=inputs, sdedit=tuple(sdedit), inpaint=tuple(inpaint),
        anagrams=tuple(views["anagrams"]), hybrids=tuple(views["hybrids"]), line=located.lines.get(root, 1),
        prompt_lines=prompt_lines, **spec,
    )


def _mask(p: _Parser, key: tuple, value: Any, image: str, image_size: tuple[int, int]) -> MaskSpec:
    """A mask file of the image's size, or {box|ellipse: [left, top, right, bottom]} in fractions of the image."""
    if isinstance(value, str):
        path, size = p.image_file(key, value, "mask")
        if size != image_size:
            raise p.error(key, f"mask {value!r} is {size[0]}x{size[1]} but image {image!r} is {image_size[0]}x{image_size[1]}; they must match")
        return MaskSpec("file", file=path)
    if isinstance(value, dict) and len(value) == 1 and next(iter(value)) in ("box", "ellipse"):
        shape, bounds = next(iter(value.items()))
        bounds = p.numbers(key + (shape,), bounds, shape, integer=False, low=0, high=1)
        if len(bounds) != 4 or not (bounds[0] < bounds[2] and bounds[1] < bounds[3]):
            raise p.error(key + (shape,), f"{shape} must be [left, top, right, bottom] fractions with left < right and top < bottom")
        return MaskSpec(shape, bounds=tuple(bounds))
    raise p.error(key, "mask must be an image file (white = fill in) or {box: [left, top, right, bottom]} / {ellipse: [...]} in fractions 0..1")


def check_experiments_against_model(path: Path, experiments: ExperimentsSpec, limits: Any, model: str = "this model") -> None:
    """Prompts within the model's token limit, scheduler known, anagrams/hybrids on pixels (before the model loads)."""
    from generator.experiments.course.editing import PIXEL_SPACE_MESSAGE, PIXEL_SPACE_WHAT
    from generator.models.schedulers import SCHEDULERS
    from generator.spec.prompt_set import SpecError

    if experiments.scheduler is not None and experiments.scheduler not in SCHEDULERS:
        raise SpecError(f"{path}:{experiments.line}: unknown scheduler {experiments.scheduler!r}; choose one of {', '.join(SCHEDULERS)}")
    if getattr(limits, "pixel_space", None) is False:  # the bake would refuse it after loading the model
        for experiment, entries in (("visual anagrams", experiments.anagrams), ("hybrid images", experiments.hybrids)):
            for entry in (e for e in entries if not e.allow_latent):
                line = experiments.prompt_lines.get(entry.prompts[0], experiments.line)
                message = PIXEL_SPACE_MESSAGE.format(experiment=experiment, model=model, what=PIXEL_SPACE_WHAT[experiment])
                raise SpecError(f"{path}:{line}: {message}")
    for text, line in experiments.prompt_lines.items():
        problem = limits.check_prompt(text)
        if problem:
            raise SpecError(f"{path}:{line}: experiment prompt {text!r}: {problem}")
