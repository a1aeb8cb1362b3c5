"""Spec stage: the prompt-set file format, loaded from YAML and validated in one place.

Every mistake becomes a ``SpecError`` naming the file and line, raised before any model loads. Fields are
declared once in ``SETTINGS`` (what a prompt may override) and ``PROMPT_FIELDS``; later experiments add
their keys there. The YAML itself is read within bounds (size, no aliases, depth, string length) by
``generator.spec.bounded_yaml``, and every value is checked with ``generator.spec.fields.Fields``, as the
sections (``experiments:``, ``training:``, ``faithfulness:``, ``daam_findings:``) are. Checks that need the model or the files the
prompt file names are the bake's, before any work: ``generator.bake.preflight``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable

from generator.errors import UserError
from generator.spec.bounded_yaml import SpecError, compose_bounded
from generator.spec.daam_findings import DaamFindingsSpec, parse_daam_findings
from generator.spec.experiments import ExperimentsSpec, parse_experiments
from generator.spec.faithfulness import FaithfulnessSpec, parse_faithfulness
from generator.spec.fields import (
    Check,
    Expectation,
    Fields,
    SourceFile,
    VariantExpectation,
    at_least,
    between,
    int_list,
)
from generator.spec.training import TrainingSpec, parse_training


@dataclass(frozen=True)
class JumpSettings:
    """Jump previews (generator/experiments/prompt/jumps.py): where to branch off and how to finish."""

    every: int | None = 5  # jump from every k-th step (0, k, 2k, ...); None: only the steps in ``at``
    at: tuple[int, ...] = ()  # extra steps to jump from
    steps: tuple[int, ...] = (1, 4)  # one preview row per jump length J
    method: str = "ddim"  # "ddim" or "beta-sum"


@dataclass(frozen=True)
class Settings:
    """Generation settings: the file's ``defaults``, overridable per prompt."""

    steps: int | None = None  # None: the model's measured default (its weights' defaults.json, or its adapter's)
    guidance: float | None = None  # None: the model's measured default
    seed: int = 0
    width: int | None = None  # None: the model's default size
    height: int | None = None
    scheduler: str | None = None  # None: the model's default scheduler
    preview_size: int = 128  # frame size in the scrubber sprite sheets (longer side, pixels)
    daam: bool = True
    jumps: JumpSettings | None = JumpSettings()  # None: no jump previews
    guidances: tuple[float, ...] = ()  # guidance variants (with ``seeds``: a grid); () for none
    seeds: tuple[int, ...] = ()  # seed variants; () for none


@dataclass(frozen=True)
class PromptSpec:
    """One prompt to bake, with its settings resolved (defaults, then its own overrides)."""

    id: str
    text: str
    settings: Settings
    line: int = 0
    compare: str | None = None  # a related prompt sampled from the same noise (a prompt pair)
    expect: Expectation | None = None  # the judge is expected to disagree with this prompt's image
    compare_expect: Expectation | None = None  # ... with the pair's second image (``compare: {text, expect, reason}``)
    alongside: str | None = None  # the id of the same prompt on another model: shown on that prompt's page
    variants_expect: tuple[VariantExpectation, ...] = ()  # variants (guidance, seed) expected to fail, with reasons

    def variant_expect(self, seed: int, guidance: float) -> Expectation | None:
        """The expectation of one guidance x seed variant: its own ``variants_expect`` entry, else the prompt's."""
        for cell in self.variants_expect:
            if cell.guidance == guidance and cell.seed in (None, seed):
                return cell.expect
        return self.expect

    def spec_hash(self, model: str) -> str:
        """Hash of everything that determines this prompt's assets (the bake cache key)."""
        payload = {"id": self.id, "text": self.text, "model": model, "settings": asdict(self.settings)}
        if self.compare is not None:
            payload["compare"] = self.compare
        if self.expect is not None:
            payload["expect"] = asdict(self.expect)
        if self.compare_expect is not None:
            payload["compare_expect"] = asdict(self.compare_expect)
        if self.alongside is not None:
            payload["alongside"] = self.alongside
        if self.variants_expect:
            payload["variants_expect"] = [asdict(cell) for cell in self.variants_expect]
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]

    def with_model_defaults(self, adapter: Any) -> PromptSpec:
        """The same prompt with every setting it leaves to the model (steps, guidance, scheduler) filled in."""
        s = self.settings
        return replace(self, settings=replace(
            s, steps=s.steps or adapter.default_steps,
            guidance=adapter.default_guidance if s.guidance is None else s.guidance,
            scheduler=s.scheduler or adapter.default_scheduler))


@dataclass(frozen=True)
class PromptSet:
    """A validated prompt file."""

    path: Path
    model: str
    defaults: Settings
    prompts: tuple[PromptSpec, ...] = field(default_factory=tuple)
    title: str = ""
    experiments: ExperimentsSpec | None = None  # when the file has an experiments: section
    training: TrainingSpec | None = None  # when the file has a training: section
    faithfulness: FaithfulnessSpec | None = None  # when the file has a faithfulness: section
    daam_findings: DaamFindingsSpec | None = None  # when the file has a daam_findings: section
    files: tuple[SourceFile, ...] = ()  # the files and folders the sections name (generator/bake/preflight.py checks)

    def only(self, ids: list[str]) -> PromptSet:
        """The same set restricted to ``ids`` (all of which must exist)."""
        known = {p.id for p in self.prompts}
        missing = [i for i in ids if i not in known]
        if missing:
            raise UserError(f"{self.path}: no prompt with id {', '.join(missing)} (known: {', '.join(sorted(known))})")
        return replace(self, prompts=tuple(p for p in self.prompts if p.id in ids))


MAX_VARIANTS = 32  # guidance x seed grid size (each variant is one more trajectory)
JUMP_KEYS = {f.name for f in fields(JumpSettings)}


def _guidances(value: Any) -> str | None:
    """The problem of a list of guidance scales, if any."""
    if not value or len(value) > 12:
        return "must list 1 to 12 guidance scales"
    for item in value:
        if isinstance(item, bool) or not isinstance(item, (int, float)) or item < 0:
            return f"must be numbers >= 0 (found {item!r})"
    return None


def _seeds(value: Any) -> str | None:
    """The problem of a list of seeds, if any."""
    if not value or len(value) > 12:
        return "must list 1 to 12 seeds"
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int) or item < 0:
            return f"must be integers >= 0 (found {item!r})"
    return None


def _jumps(value: Any) -> str | None:
    """The problem of a ``jumps:`` value (true, false or a mapping of ``JumpSettings`` keys), if any."""
    if isinstance(value, bool):  # true: the default jumps, false: none
        return None
    unknown = sorted(set(value) - JUMP_KEYS)
    if unknown:
        return f".{unknown[0]} is not a jumps key; allowed: {', '.join(sorted(JUMP_KEYS))}"
    every = value.get("every", JumpSettings.every)
    if every is not None and (isinstance(every, bool) or not isinstance(every, int) or every < 1):
        return f".every must be an integer >= 1 or null (got {every!r})"
    if "at" in value:
        problem = int_list(value["at"], 0, ".at")
        if problem:
            return problem
    if every is None and not value.get("at"):
        return " needs 'every' or a list 'at' of steps to jump from"
    if "steps" in value:
        problem = int_list(value["steps"], 1, ".steps", most=8)
        if problem:
            return problem
        if max(value["steps"]) > 50:
            return f".steps must be at most 50 per jump (got {max(value['steps'])})"
    method = value.get("method", JumpSettings.method)
    if method not in ("ddim", "beta-sum"):
        return f".method must be 'ddim' or 'beta-sum' (got {method!r})"
    return None


def _to_jumps(value: Any) -> JumpSettings | None:
    """A checked ``jumps:`` value as ``JumpSettings`` (None: no jump previews)."""
    if value is False:
        return None
    if value is True:
        return JumpSettings()
    converted = {k: tuple(dict.fromkeys(v)) if isinstance(v, list) else v for k, v in value.items()}  # drop repeats
    return JumpSettings(**converted)


# how a checked YAML value becomes a Settings field
CONVERT: dict[str, Callable[[Any], Any]] = {
    "guidance": float,
    "guidances": lambda v: tuple(float(x) for x in v),
    "seeds": lambda v: tuple(int(x) for x in v),
    "jumps": _to_jumps,
}

# field -> (accepted types, range check)
SETTINGS: dict[str, tuple[tuple[type, ...], Check | None]] = {
    "steps": ((int,), at_least(1)),
    "guidance": ((int, float), at_least(0)),
    "seed": ((int,), at_least(0)),
    "width": ((int,), at_least(1)),
    "height": ((int,), at_least(1)),
    "scheduler": ((str,), None),
    "preview_size": ((int,), between(16, 1024)),
    "daam": ((bool,), None),
    "jumps": ((dict, bool), _jumps),
    "guidances": ((list,), _guidances),
    "seeds": ((list,), _seeds),
}
TOP_LEVEL = {"model", "defaults", "prompts", "title", "description", "experiments", "training", "faithfulness",
             "daam_findings"}
PROMPT_FIELDS = {"id", "text", "compare", "expect", "reason", "alongside", "variants_expect"} | set(SETTINGS)


def load_prompt_set(path: str | Path, model_override: str | None = None) -> PromptSet:
    """Read and validate a prompt file; ``model_override`` (the CLI's --model) replaces its ``model``."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}:1: no such prompt file")
    f = Fields(path)
    document = compose_bounded(path)  # size, aliases, depth and string length refused before anything is built
    if document is None:
        raise SpecError(f"{path}:1: the file is empty")
    data = f.to_python(document)
    if not isinstance(data, dict):
        raise f.error((), "the file must be a mapping with keys model, defaults and prompts")
    f.file_keys((), data, TOP_LEVEL, "top-level key")

    model = model_override or data.get("model")
    if not isinstance(model, str) or not model:
        raise f.error(("model",), "'model' must name a model id or path (or pass --model)")
    defaults_data = data.get("defaults", {}) or {}
    if not isinstance(defaults_data, dict):
        raise f.error(("defaults",), "'defaults' must be a mapping")
    f.file_keys(("defaults",), defaults_data, set(SETTINGS), "key in defaults")
    defaults = _settings(f, ("defaults",), Settings(), defaults_data)

    experiments = parse_experiments(f, data["experiments"], defaults) if "experiments" in data else None
    training = parse_training(f, data["training"]) if "training" in data else None
    faithfulness = parse_faithfulness(f, data["faithfulness"]) if "faithfulness" in data else None
    daam_findings = parse_daam_findings(f, data["daam_findings"]) if "daam_findings" in data else None
    chapters = any(c is not None for c in (experiments, training, faithfulness, daam_findings))
    entries = data.get("prompts", [] if chapters else None)
    if not isinstance(entries, list) or not (entries or chapters):
        raise f.error(("prompts",), "'prompts' must be a non-empty list (it may be left out when the file has "
                                    "experiments:, training:, faithfulness: or daam_findings:)")
    prompts, seen = [], {}
    for index, entry in enumerate(entries):
        key = ("prompts", index)
        if not isinstance(entry, dict):
            raise f.error(key, "each prompt must be a mapping with 'id' and 'text'")
        f.file_keys(key, entry, PROMPT_FIELDS, "prompt key")
        prompt_id, text = f.slug(key + ("id",), entry.get("id")), entry.get("text")
        if prompt_id in seen:
            raise f.error(key + ("id",), f"duplicate id {prompt_id!r} (first on line {seen[prompt_id]})")
        seen[prompt_id] = f.lines[key + ("id",)]
        if not isinstance(text, str) or not text.strip():
            raise f.error(key + ("text",) if "text" in entry else key,
                          f"prompt {prompt_id!r} needs a non-empty 'text'")
        settings = _settings(f, key, defaults, {k: v for k, v in entry.items() if k in SETTINGS})
        compare, compare_expect = _compare(f, key, prompt_id, entry.get("compare"))
        if compare is not None and compare.strip() == text.strip():
            raise f.error(key + ("compare",), f"prompt {prompt_id!r}: 'compare' is the same text as the prompt")
        # the grid (generator/bake/prompt/extra_trajectories.py) always holds the prompt's own seed and guidance too
        variants = len({settings.seed, *settings.seeds}) * len({settings.guidance, *settings.guidances})
        if variants > MAX_VARIANTS:
            raise f.error(key,
                          f"prompt {prompt_id!r}: {variants} guidance x seed variants; at most {MAX_VARIANTS}")
        alongside = f.slug(key + ("alongside",), entry["alongside"]) if "alongside" in entry else None
        if alongside == prompt_id:
            raise f.error(key + ("alongside",), f"prompt {prompt_id!r}: 'alongside' names the prompt itself")
        variants_expect = _variants_expect(f, key, prompt_id, settings, entry.get("variants_expect"))
        prompts.append(PromptSpec(prompt_id, text.strip(), settings, f.lines[key], compare and compare.strip(),
                                  f.expectation(key, entry), compare_expect, alongside, variants_expect))
    title = data.get("title") or path.stem.replace("-", " ").title()
    if not isinstance(title, str):
        raise f.error(("title",), "'title' must be a string")
    return PromptSet(path, model, defaults, tuple(prompts), title, experiments, training, faithfulness,
                     daam_findings, tuple(f.files))


COMPARE_KEYS = {"text", "expect", "reason"}
VARIANT_EXPECT_KEYS = {"guidance", "seed", "expect", "reason"}


def _variants_expect(f: Fields, key: tuple, prompt_id: str, settings: Settings,
                     value: Any) -> tuple[VariantExpectation, ...]:
    """A prompt's ``variants_expect:``: grid cells (a guidance, optionally one seed) expected to fail, each with
    ``expect: fail`` and its ``reason``; the cell must be in the prompt's guidance x seed grid."""
    if value is None:
        return ()
    where = key + ("variants_expect",)
    if not isinstance(value, list) or not value:
        raise f.error(where, f"prompt {prompt_id!r}: variants_expect must be a non-empty list of "
                             "{guidance, seed, expect, reason}")
    guidances, seeds = set(settings.guidances), {settings.seed, *settings.seeds}
    cells = []
    for index, cell in enumerate(value):
        at = where + (index,)
        if not isinstance(cell, dict):
            raise f.error(at, "each variants_expect entry must be a mapping with guidance, expect and reason")
        f.keys(at, cell, VARIANT_EXPECT_KEYS, "variants_expect")
        guidance, seed = cell.get("guidance"), cell.get("seed")
        if isinstance(guidance, bool) or not isinstance(guidance, (int, float)) or guidance not in guidances:
            raise f.error(at + ("guidance",) if "guidance" in cell else at,
                          f"prompt {prompt_id!r}: variants_expect needs a guidance of its guidances "
                          f"({', '.join(f'{g:g}' for g in sorted(guidances)) or 'none'})")
        if seed is not None and (isinstance(seed, bool) or seed not in seeds):
            raise f.error(at + ("seed",),
                          f"prompt {prompt_id!r}: variants_expect seed {seed!r} is not one of its seeds")
        expect = f.expectation(at, cell)
        if expect is None:
            raise f.error(at, "a variants_expect entry needs expect: fail and a reason")
        cells.append(VariantExpectation(float(guidance), seed, expect))
    return tuple(cells)


def _compare(f: Fields, key: tuple, prompt_id: str, value: Any) -> tuple[str | None, Expectation | None]:
    """A prompt's ``compare:``: a prompt text, or a mapping ``{text, expect, reason}`` when the pair's second image
    is expected to fail (its own ``expect: fail`` and ``reason``, as a prompt's)."""
    if value is None:
        return None, None
    where = key + ("compare",)
    if isinstance(value, dict):
        f.keys(where, value, COMPARE_KEYS, "compare")
        text = value.get("text")
        if not isinstance(text, str) or not text.strip():
            raise f.error(where + ("text",) if "text" in value else where,
                          f"prompt {prompt_id!r}: compare needs a non-empty 'text'")
        return text, f.expectation(where, value)
    if not isinstance(value, str) or not value.strip():
        raise f.error(where, f"prompt {prompt_id!r}: 'compare' must be a non-empty prompt text "
                             "(or a mapping with text, expect and reason)")
    return value, None


def _settings(f: Fields, key: tuple, base: Settings, values: dict) -> Settings:
    """``base`` with ``values`` (a mapping of ``SETTINGS`` keys) checked and applied."""
    for name, value in values.items():
        f.setting(key, name, value, *SETTINGS[name])
    valid = {f.name for f in fields(Settings)}
    return replace(base, **{k: CONVERT.get(k, lambda v: v)(v) for k, v in values.items() if k in valid})
