"""Spec stage: the prompt-set file format, loaded from YAML and validated in one place.

Every mistake becomes a ``SpecError`` naming the file and line, raised before any model loads. Fields are
declared once in ``SETTINGS`` (what a prompt may override) and ``PROMPT_FIELDS``; later experiments add
their keys there. The YAML itself is read within bounds (size, no aliases, depth, string length) by
``generator.spec.bounded_yaml``.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable

import yaml

from generator.errors import UserError
from generator.spec.bounded_yaml import SpecError, compose_bounded

SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


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
class Expectation:
    """``expect: fail`` with its ``reason``: a figure that shows a failure on purpose (binding, entanglement)."""

    outcome: str  # "fail"
    reason: str


@dataclass(frozen=True)
class PromptSpec:
    """One prompt to bake, with its settings resolved (defaults, then its own overrides)."""

    id: str
    text: str
    settings: Settings
    line: int = 0
    compare: str | None = None  # a related prompt sampled from the same noise (a prompt pair)
    expect: Expectation | None = None  # the judge is expected to disagree with this prompt's image

    def spec_hash(self, model: str) -> str:
        """Hash of everything that determines this prompt's assets (the bake cache key)."""
        payload = {"id": self.id, "text": self.text, "model": model, "settings": asdict(self.settings)}
        if self.compare is not None:
            payload["compare"] = self.compare
        if self.expect is not None:
            payload["expect"] = asdict(self.expect)
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]

    def with_model_defaults(self, adapter: Any) -> PromptSpec:
        """The same prompt with every setting it leaves to the model (steps, guidance, scheduler) filled in."""
        s = self.settings
        return replace(self, settings=replace(
            s, steps=s.steps or adapter.default_steps, guidance=adapter.default_guidance if s.guidance is None else s.guidance,
            scheduler=s.scheduler or adapter.default_scheduler))


@dataclass(frozen=True)
class PromptSet:
    """A validated prompt file."""

    path: Path
    model: str
    defaults: Settings
    prompts: tuple[PromptSpec, ...] = field(default_factory=tuple)
    title: str = ""
    experiments: Any = None  # generator.spec.experiments.ExperimentsSpec when the file has an experiments: section
    training: Any = None  # generator.spec.training.TrainingSpec when the file has a training: section
    faithfulness: Any = None  # generator.spec.faithfulness.FaithfulnessSpec when the file has a faithfulness: section

    def only(self, ids: list[str]) -> PromptSet:
        """The same set restricted to ``ids`` (all of which must exist)."""
        known = {p.id for p in self.prompts}
        missing = [i for i in ids if i not in known]
        if missing:
            raise UserError(f"{self.path}: no prompt with id {', '.join(missing)} (known: {', '.join(sorted(known))})")
        return replace(self, prompts=tuple(p for p in self.prompts if p.id in ids))


def _positive(value: Any) -> str | None:
    return None if value >= 1 else "must be >= 1"


def _non_negative(value: Any) -> str | None:
    return None if value >= 0 else "must be >= 0"


def _preview(value: Any) -> str | None:
    return None if 16 <= value <= 1024 else "must be between 16 and 1024"


MAX_VARIANTS = 32  # guidance x seed grid size (each variant is one more trajectory)
JUMP_KEYS = {f.name for f in fields(JumpSettings)}


def _guidances(value: Any) -> str | None:
    if not value or len(value) > 12:
        return "must list 1 to 12 guidance scales"
    for item in value:
        if isinstance(item, bool) or not isinstance(item, (int, float)) or item < 0:
            return f"must be numbers >= 0 (found {item!r})"
    return None


def _seeds(value: Any) -> str | None:
    if not value or len(value) > 12:
        return "must list 1 to 12 seeds"
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int) or item < 0:
            return f"must be integers >= 0 (found {item!r})"
    return None


def _int_list(value: Any, low: int, what: str, most: int = 64) -> str | None:
    if not isinstance(value, list) or not value or len(value) > most:
        return f"{what} must be a list of 1 to {most} integers"
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int) or item < low:
            return f"{what} must hold integers >= {low} (found {item!r})"
    return None


def _jumps(value: Any) -> str | None:
    if isinstance(value, bool):  # true: the default jumps, false: none
        return None
    unknown = sorted(set(value) - JUMP_KEYS)
    if unknown:
        return f".{unknown[0]} is not a jumps key; allowed: {', '.join(sorted(JUMP_KEYS))}"
    every = value.get("every", JumpSettings.every)
    if every is not None and (isinstance(every, bool) or not isinstance(every, int) or every < 1):
        return f".every must be an integer >= 1 or null (got {every!r})"
    if "at" in value:
        problem = _int_list(value["at"], 0, ".at")
        if problem:
            return problem
    if every is None and not value.get("at"):
        return " needs 'every' or a list 'at' of steps to jump from"
    if "steps" in value:
        problem = _int_list(value["steps"], 1, ".steps", most=8)
        if problem:
            return problem
        if max(value["steps"]) > 50:
            return f".steps must be at most 50 per jump (got {max(value['steps'])})"
    method = value.get("method", JumpSettings.method)
    if method not in ("ddim", "beta-sum"):
        return f".method must be 'ddim' or 'beta-sum' (got {method!r})"
    return None


def _to_jumps(value: Any) -> JumpSettings | None:
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
SETTINGS: dict[str, tuple[tuple[type, ...], Callable[[Any], str | None] | None]] = {
    "steps": ((int,), _positive),
    "guidance": ((int, float), _non_negative),
    "seed": ((int,), _non_negative),
    "width": ((int,), _positive),
    "height": ((int,), _positive),
    "scheduler": ((str,), None),
    "preview_size": ((int,), _preview),
    "daam": ((bool,), None),
    "jumps": ((dict, bool), _jumps),
    "guidances": ((list,), _guidances),
    "seeds": ((list,), _seeds),
}
TOP_LEVEL = {"model", "defaults", "prompts", "title", "description", "experiments", "training", "faithfulness"}
PROMPT_FIELDS = {"id", "text", "compare", "expect", "reason"} | set(SETTINGS)


class _Located:
    """YAML values with the line each came from (1-based)."""

    def __init__(self, path: Path):
        self.path = path
        self.lines: dict[tuple, int] = {}
        self.constructor = yaml.SafeLoader("")  # YAML 1.1 safe typing of scalars, one for the whole file

    def error(self, key: tuple, message: str) -> SpecError:
        return SpecError(f"{self.path}:{self.lines.get(key, 1)}: {message}")

    def to_python(self, node: yaml.Node, key: tuple = ()) -> Any:
        self.lines[key] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            result = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):  # '? [a, b]: c' would make an unhashable key
                    self.lines[key + ("<key>",)] = key_node.start_mark.line + 1
                    raise self.error(key + ("<key>",), "a key must be a plain word, not a list or mapping")
                name = self.to_python(key_node, key + ("<key>",))
                self.lines[key + (name,)] = key_node.start_mark.line + 1
                if name in result:
                    raise self.error(key + (name,), f"duplicate key {name!r}")
                result[name] = self.to_python(value_node, key + (name,))
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.to_python(item, key + (i,)) for i, item in enumerate(node.value)]
        return self.scalar(node, key)

    def scalar(self, node: yaml.Node, key: tuple) -> Any:
        """A scalar with YAML 1.1 safe-loader typing (ints, floats, bools, null, strings); other tags refused."""
        try:
            return self.constructor.construct_object(node, deep=True)
        except yaml.YAMLError as error:  # e.g. a !!python/object tag, which the safe loader refuses
            problem = getattr(error, "problem", None) or str(error).strip().splitlines()[0]
            raise self.error(key, f"cannot read this value: {problem}") from None
        except (ValueError, TypeError, OverflowError) as error:  # e.g. '!!int abc' or an int of 5000 digits
            raise self.error(key, f"cannot read this value: {str(error).splitlines()[0][:120]}") from None


def load_prompt_set(path: str | Path, model_override: str | None = None) -> PromptSet:
    """Read and validate a prompt file; ``model_override`` (the CLI's --model) replaces its ``model``."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}:1: no such prompt file")
    located = _Located(path)
    document = compose_bounded(path)  # size, aliases, depth and string length refused before anything is built
    if document is None:
        raise SpecError(f"{path}:1: the file is empty")
    data = located.to_python(document)
    if not isinstance(data, dict):
        raise located.error((), "the file must be a mapping with keys model, defaults and prompts")
    _check_keys(located, (), data, TOP_LEVEL, "top-level key")

    model = model_override or data.get("model")
    if not isinstance(model, str) or not model:
        raise located.error(("model",), "'model' must name a model id or path (or pass --model)")
    defaults_data = data.get("defaults", {}) or {}
    if not isinstance(defaults_data, dict):
        raise located.error(("defaults",), "'defaults' must be a mapping")
    _check_keys(located, ("defaults",), defaults_data, set(SETTINGS), "key in defaults")
    defaults = _settings(located, ("defaults",), Settings(), defaults_data)

    experiments = None
    if "experiments" in data:
        from generator.spec.experiments import parse_experiments

        experiments = parse_experiments(located, data["experiments"], path.resolve().parent, defaults)
    training = None
    if "training" in data:
        from generator.spec.training import parse_training

        training = parse_training(located, data["training"], path.resolve().parent)
    faithfulness = None
    if "faithfulness" in data:
        from generator.spec.faithfulness import parse_faithfulness

        faithfulness = parse_faithfulness(located, data["faithfulness"], path.resolve().parent)
    chapters = experiments is not None or training is not None or faithfulness is not None
    entries = data.get("prompts", [] if chapters else None)
    if not isinstance(entries, list) or not (entries or chapters):
        raise located.error(("prompts",), "'prompts' must be a non-empty list (it may be left out when the file has "
                                          "experiments:, training: or faithfulness:)")
    prompts, seen = [], {}
    for index, entry in enumerate(entries):
        key = ("prompts", index)
        if not isinstance(entry, dict):
            raise located.error(key, "each prompt must be a mapping with 'id' and 'text'")
        _check_keys(located, key, entry, PROMPT_FIELDS, "prompt key")
        prompt_id, text = entry.get("id"), entry.get("text")
        if not isinstance(prompt_id, str) or not SLUG.match(prompt_id):
            raise located.error(key + ("id",), f"id {prompt_id!r} must be a slug: lowercase letters, digits, '-' or '_'")
        if prompt_id in seen:
            raise located.error(key + ("id",), f"duplicate id {prompt_id!r} (first on line {seen[prompt_id]})")
        seen[prompt_id] = located.lines[key + ("id",)]
        if not isinstance(text, str) or not text.strip():
            raise located.error(key + ("text",) if "text" in entry else key, f"prompt {prompt_id!r} needs a non-empty 'text'")
        settings = _settings(located, key, defaults, {k: v for k, v in entry.items() if k in SETTINGS})
        compare = entry.get("compare")
        if compare is not None and (not isinstance(compare, str) or not compare.strip()):
            raise located.error(key + ("compare",), f"prompt {prompt_id!r}: 'compare' must be a non-empty prompt text")
        if compare is not None and compare.strip() == text.strip():
            raise located.error(key + ("compare",), f"prompt {prompt_id!r}: 'compare' is the same text as the prompt")
        # the grid (generator/bake/prompt/extra_trajectories.py) always holds the prompt's own seed and guidance too
        variants = len({settings.seed, *settings.seeds}) * len({settings.guidance, *settings.guidances})
        if variants > MAX_VARIANTS:
            raise located.error(key, f"prompt {prompt_id!r}: {variants} guidance x seed variants; at most {MAX_VARIANTS}")
        prompts.append(PromptSpec(prompt_id, text.strip(), settings, located.lines[key], compare and compare.strip(),
                                  parse_expectation(located, key, entry)))
    title = data.get("title") or path.stem.replace("-", " ").title()
    if not isinstance(title, str):
        raise located.error(("title",), "'title' must be a string")
    return PromptSet(path, model, defaults, tuple(prompts), title, experiments, training, faithfulness)


def parse_expectation(located: Any, key: tuple, entry: dict) -> Expectation | None:
    """``expect: fail`` and its ``reason`` (both or neither), from a prompt or an experiment entry."""
    if "expect" not in entry and "reason" not in entry:
        return None
    if entry.get("expect") != "fail":
        raise located.error(key + ("expect",), f"expect must be 'fail' (with a reason), got {entry.get('expect')!r}")
    reason = entry.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise located.error(key + ("expect",), "expect: fail needs a 'reason' saying which failure the figure teaches")
    return Expectation("fail", reason.strip())


def _check_keys(located: _Located, key: tuple, data: dict, allowed: set[str], what: str) -> None:
    for name in data:
        if name not in allowed:
            raise located.error(key + (name,), f"unknown {what} {name!r}; allowed: {', '.join(sorted(allowed))}")


def _settings(located: _Located, key: tuple, base: Settings, values: dict) -> Settings:
    for name, value in values.items():
        types, check = SETTINGS[name]
        if isinstance(value, bool) and bool not in types or not isinstance(value, types):
            expected = " or ".join(t.__name__ for t in types)
            raise located.error(key + (name,), f"{name} must be {expected}, got {value!r}")
        problem = check(value) if check else None
        if problem and problem[0] in ". ":  # about a nested key ('.every ...'): point at its line
            nested = problem[1:].split(" ", 1)[0]
            where = key + (name, nested) if problem[0] == "." and key + (name, nested) in located.lines else key + (name,)
            raise located.error(where, f"{name}{problem}")
        if problem:
            raise located.error(key + (name,), f"{name} {problem} (got {value!r})")
    valid = {f.name for f in fields(Settings)}
    return replace(base, **{k: CONVERT.get(k, lambda v: v)(v) for k, v in values.items() if k in valid})


def check_against_model(prompt_set: PromptSet, limits: Any) -> None:
    """Model-dependent checks (size multiple, scheduler name, token limit, class labels), before loading it.

    ``limits`` is a ``generator.models.limits.ModelLimits``.
    """
    from generator.models.schedulers import SCHEDULERS

    for prompt in prompt_set.prompts:
        where = f"{prompt_set.path}:{prompt.line}"
        s = prompt.settings
        if s.scheduler is not None and s.scheduler not in SCHEDULERS:
            raise SpecError(f"{where}: unknown scheduler {s.scheduler!r}; choose one of {', '.join(SCHEDULERS)}")
        for name, size in (("width", s.width), ("height", s.height)):
            if size is not None and size % limits.size_multiple:
                raise SpecError(
                    f"{where}: {name} {size} is not a multiple of {limits.size_multiple}, which {prompt_set.model} needs"
                )
        problem = limits.check_prompt(prompt.text)
        if problem:
            raise SpecError(f"{where}: prompt {prompt.id!r}: {problem}")
        if prompt.compare is not None:
            problem = limits.check_prompt(prompt.compare)
            if problem:
                raise SpecError(f"{where}: prompt {prompt.id!r} compare: {problem}")
    if prompt_set.experiments is not None:
        from generator.spec.experiments import check_experiments_against_model

        check_experiments_against_model(prompt_set.path, prompt_set.experiments, limits, prompt_set.model)
