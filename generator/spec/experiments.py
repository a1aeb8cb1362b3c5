"""Spec stage: the ``experiments:`` section of a prompt file (course experiments), validated in one place.

Parsed by ``generator.spec.prompt_set.load_prompt_set`` with ``generator.spec.fields.Fields``; every mistake is one
``FILE:LINE: message`` ``SpecError`` raised before any model loads. Image paths are relative to the prompt file;
the bake checks, before any work, that they are readable images and that masks match their image's size
(generator/bake/preflight.py), and hashes their bytes into its cache key (generator/bake/chapters/experiments.py).
See README.md, "Prompt file: experiments", for the format.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from generator.spec.fields import Expectation, Fields

MAX_STEPS = 1000
SDEDIT_START_INDICES = (1, 3, 5, 7, 10, 20)
NEUTRAL_PROMPT = "a high quality photo"


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
    seeds: tuple[int, ...] = ()  # every setting sampled from each seed (one grid row per seed); () = (run.seed,)

    def all_seeds(self) -> tuple[int, ...]:
        """The seeds of the grid's rows."""
        return self.seeds or (self.run.seed,)


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
    """An anagram or hybrid entry (kernel_size/sigma only matter for hybrids); with ``seeds`` the bake tries each
    and shows the first whose views the judge passes (generator/bake/chapters/course_views.py)."""

    id: str
    prompts: tuple[str, str]
    allow_latent: bool
    run: Run
    kernel_size: int = 33
    sigma: float = 2.0
    expect: Expectation | None = None
    seeds: tuple[int, ...] = ()  # () = (run.seed,)

    def all_seeds(self) -> tuple[int, ...]:
        """The seeds to try, in order."""
        return self.seeds or (self.run.seed,)


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


SECTION_KEYS = {"title", "seed", "steps", "guidance", "scheduler", "inputs", "forward", "denoise", "samples",
                "sdedit", "inpaint", "anagrams", "hybrids"}
RUN_KEYS = {"steps", "guidance", "seed"}
MAX_SEEDS = 16  # seeds: of one entry (each is a whole sampling run)
EXPECT_KEYS = {"expect", "reason"}  # a figure that shows a failure on purpose (generator/spec/fields.py Expectation)


def _run(f: Fields, key: tuple, data: dict, base: Run) -> Run:
    """The entry's steps, guidance and seed, each falling back to ``base``."""
    steps = f.number(key + ("steps",), data["steps"], "steps", integer=True, low=1, high=MAX_STEPS) \
        if "steps" in data else base.steps
    guidance = f.number(key + ("guidance",), data["guidance"], "guidance", integer=False, low=0) \
        if "guidance" in data else base.guidance
    seed = f.number(key + ("seed",), data["seed"], "seed", integer=True, low=0) if "seed" in data else base.seed
    return Run(steps, guidance, seed)


def _seeds(f: Fields, key: tuple, data: dict) -> tuple[int, ...]:
    """An entry's ``seeds:``: 1 to ``MAX_SEEDS`` distinct integers >= 0, instead of ``seed:`` (() when unset)."""
    if "seeds" not in data:
        return ()
    if "seed" in data:
        raise f.error(key + ("seeds",), "give seed or seeds, not both")
    seeds = f.numbers(key + ("seeds",), data["seeds"], "seeds", integer=True, low=0)
    if len(seeds) > MAX_SEEDS:
        raise f.error(key + ("seeds",), f"seeds must list at most {MAX_SEEDS} seeds (got {len(seeds)})")
    if len(set(seeds)) != len(seeds):
        raise f.error(key + ("seeds",), f"seeds must be distinct (got {list(seeds)})")
    return seeds


def _image_ref(f: Fields, key: tuple, value: Any, inputs: dict[str, str]) -> str:
    """The name of one of the section's ``inputs``."""
    if not isinstance(value, str) or value not in inputs:
        known = ", ".join(sorted(inputs)) or "none defined"
        raise f.error(key, f"image {value!r} is not one of the names under experiments.inputs ({known})")
    return value


def _ident(f: Fields, key: tuple, data: dict, default: str, seen: set[str]) -> str:
    """The entry's id (a slug, ``default`` when unset), unique across the section."""
    value = f.slug(key + ("id",), data.get("id", default))
    if value in seen:
        raise f.error(key + ("id",), f"duplicate experiment id {value!r}")
    seen.add(value)
    return value


def parse_experiments(f: Fields, data: Any, defaults: Any) -> ExperimentsSpec:
    """The validated ``experiments:`` section; ``defaults`` is the file's ``Settings``."""
    root = ("experiments",)
    data = f.keys(root, data if data is not None else {}, SECTION_KEYS, "experiments")
    base = _run(f, root, data, Run(defaults.steps, defaults.guidance, defaults.seed))
    scheduler = data.get("scheduler", defaults.scheduler)
    if scheduler is not None and not isinstance(scheduler, str):
        raise f.error(root + ("scheduler",), "scheduler must be a string")
    title = f.text(root + ("title",), data["title"], "title") if "title" in data else "Course experiments"
    prompt_lines: dict[str, int] = {}

    def prompt(key: tuple, value: Any, name: str = "prompt") -> str:
        text = f.text(key, value, name)
        prompt_lines.setdefault(text, f.line(key))
        return text

    def numbers(key: tuple, d: dict, name: str, default: list, **bounds: Any) -> tuple:
        return f.numbers(key + (name,), d.get(name, default), name, **bounds)

    named = data.get("inputs", {}) or {}
    inputs_data = f.keys(root + ("inputs",), named, set(named), "experiments.inputs")
    inputs = {name: f.image(root + ("inputs", name), value, f"input image {name!r}", image=name)
              for name, value in inputs_data.items()}

    spec: dict[str, Any] = {}
    if "forward" in data:
        key = root + ("forward",)
        d = f.keys(key, data["forward"], {"image", "timesteps", "seed"}, "forward")
        spec["forward"] = ForwardSpec(
            _image_ref(f, key + ("image",), d.get("image"), inputs),
            numbers(key, d, "timesteps", [250, 500, 750], integer=True, low=0, high=MAX_STEPS - 1),
            _run(f, key, d, base).seed,
        )
    if "denoise" in data:
        key = root + ("denoise",)
        allowed = {"image", "prompt", "timesteps", "blur_sigmas", "start_index"} | RUN_KEYS
        d = f.keys(key, data["denoise"], allowed, "denoise")
        run = _run(f, key, d, base)
        start = d.get("start_index")
        if start is not None:
            start = f.number(key + ("start_index",), start, "start_index", integer=True, low=0,
                             high=(run.steps or MAX_STEPS) - 1)
        spec["denoise"] = DenoiseSpec(
            _image_ref(f, key + ("image",), d.get("image"), inputs),
            prompt(key + ("prompt",), d.get("prompt", NEUTRAL_PROMPT)),
            numbers(key, d, "timesteps", [250, 500, 750], integer=True, low=1, high=MAX_STEPS - 1),
            numbers(key, d, "blur_sigmas", [0.5, 1, 2, 3], integer=False, low=0, high=20, low_open=True),
            start, run,
        )
    if "samples" in data:
        key = root + ("samples",)
        allowed = {"prompt", "step_counts", "guidance_scales", "seeds"} | RUN_KEYS | EXPECT_KEYS
        d = f.keys(key, data["samples"], allowed, "samples")
        spec["samples"] = SamplesSpec(
            prompt(key + ("prompt",), d.get("prompt", NEUTRAL_PROMPT)),
            numbers(key, d, "step_counts", [10, 20, 100], integer=True, low=1, high=MAX_STEPS),
            numbers(key, d, "guidance_scales", [0, 1, 3, 7], integer=False, low=0),
            _run(f, key, d, base),
            f.expectation(key, d),
            _seeds(f, key, d),
        )
    seen: set[str] = set()
    sdedit = []
    for i, d in enumerate(f.entries(root + ("sdedit",), data["sdedit"], "sdedit") if "sdedit" in data else []):
        key = root + ("sdedit", i)
        d = f.keys(key, d, {"id", "image", "prompt", "start_indices"} | RUN_KEYS | EXPECT_KEYS, "an sdedit entry")
        run = _run(f, key, d, base)
        starts = numbers(key, d, "start_indices", list(SDEDIT_START_INDICES), integer=True, low=0,
                         high=(run.steps or MAX_STEPS) - 1)
        image = _image_ref(f, key + ("image",), d.get("image"), inputs)
        sdedit.append(SDEditSpec(_ident(f, key, d, f"sdedit-{image}", seen), image,
                                 prompt(key + ("prompt",), d.get("prompt", NEUTRAL_PROMPT)), starts, run,
                                 f.expectation(key, d)))
    inpaint = []
    for i, d in enumerate(f.entries(root + ("inpaint",), data["inpaint"], "inpaint") if "inpaint" in data else []):
        key = root + ("inpaint", i)
        d = f.keys(key, d, {"id", "image", "mask", "prompt"} | RUN_KEYS | EXPECT_KEYS, "an inpaint entry")
        image = _image_ref(f, key + ("image",), d.get("image"), inputs)
        mask = _mask(f, key + ("mask",), d.get("mask"), image)
        inpaint.append(InpaintSpec(_ident(f, key, d, f"inpaint-{image}", seen), image, mask,
                                   prompt(key + ("prompt",), d.get("prompt", NEUTRAL_PROMPT)), _run(f, key, d, base),
                                   f.expectation(key, d)))
    views = {section: _views(f, root, data, section, base, prompt, seen) for section in ("anagrams", "hybrids")}
    return ExperimentsSpec(
        title=title, scheduler=scheduler, inputs=inputs, sdedit=tuple(sdedit), inpaint=tuple(inpaint),
        anagrams=views["anagrams"], hybrids=views["hybrids"], line=f.line(root), prompt_lines=prompt_lines, **spec,
    )


def _views(f: Fields, root: tuple, data: dict, section: str, base: Run, prompt: Any, seen: set[str]
           ) -> tuple[ViewsSpec, ...]:
    """The entries of ``anagrams`` or ``hybrids`` (``prompt`` reads and records a prompt text)."""
    allowed = {"id", "prompts", "allow_latent", "seeds"} | RUN_KEYS | EXPECT_KEYS
    if section == "hybrids":
        allowed |= {"kernel_size", "sigma"}
    entries = []
    for i, d in enumerate(f.entries(root + (section,), data[section], section) if section in data else []):
        key = root + (section, i)
        d = f.keys(key, d, allowed, f"an entry of {section}")
        pair = d.get("prompts")
        if not isinstance(pair, list) or len(pair) != 2:
            raise f.error(key + ("prompts",), f"{section} need 'prompts': a list of exactly two prompts")
        texts = (prompt(key + ("prompts", 0), pair[0]), prompt(key + ("prompts", 1), pair[1]))
        allow = d.get("allow_latent", False)
        if not isinstance(allow, bool):
            raise f.error(key + ("allow_latent",), "allow_latent must be true or false")
        extra = {}
        if section == "hybrids":
            size = f.number(key + ("kernel_size",), d.get("kernel_size", 33), "kernel_size", integer=True, low=1,
                            high=255)
            if size % 2 == 0:
                raise f.error(key + ("kernel_size",), f"kernel_size must be odd (got {size})")
            sigma = f.number(key + ("sigma",), d.get("sigma", 2.0), "sigma", integer=False, low=0, low_open=True)
            extra = {"kernel_size": size, "sigma": sigma}
        ident = _ident(f, key, d, f"{section[:-1]}-{i + 1}", seen)
        entries.append(ViewsSpec(ident, texts, allow, _run(f, key, d, base), **extra, expect=f.expectation(key, d),
                                 seeds=_seeds(f, key, d)))
    return tuple(entries)


def _mask(f: Fields, key: tuple, value: Any, image: str) -> MaskSpec:
    """A mask file (of the image's size: the bake checks it) or {box|ellipse: [left, top, right, bottom]} fractions."""
    if isinstance(value, str):
        return MaskSpec("file", file=f.image(key, value, "mask", kind="mask", image=image))
    if isinstance(value, dict) and len(value) == 1 and next(iter(value)) in ("box", "ellipse"):
        shape, bounds = next(iter(value.items()))
        bounds = f.numbers(key + (shape,), bounds, shape, integer=False, low=0, high=1)
        if len(bounds) != 4 or not (bounds[0] < bounds[2] and bounds[1] < bounds[3]):
            raise f.error(key + (shape,), f"{shape} must be [left, top, right, bottom] fractions with left < right "
                                          "and top < bottom")
        return MaskSpec(shape, bounds=tuple(bounds))
    raise f.error(key, "mask must be an image file (white = fill in) or {box: [left, top, right, bottom]} / "
                       "{ellipse: [...]} in fractions 0..1")
