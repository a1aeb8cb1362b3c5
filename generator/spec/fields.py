"""Spec stage: the one field checker every section of a prompt file is read with, and the fields they share.

``Fields`` turns the composed YAML into Python values, remembering the line each came from, and checks them:
known keys, numbers in a range, non-empty texts, slugs, lists of entries, paths relative to the prompt file.
Every mistake is one ``FILE:LINE: message`` ``SpecError``. Paths are only resolved here: each file or folder a
section names is recorded as a ``SourceFile``, and whether it exists and can be read is checked by the bake
before any work starts (generator/bake/preflight.py), so reading a prompt file reads nothing but the YAML.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from generator.spec.bounded_yaml import SpecError

SLUG = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")  # prompt and experiment ids: they name files and page anchors

Check = Callable[[Any], str | None]  # a value's problem ('must be >= 1'), None when it has none


@dataclass(frozen=True)
class Expectation:
    """``expect: fail`` with its ``reason``: a figure that shows a failure on purpose (binding, entanglement)."""

    outcome: str  # "fail"
    reason: str


@dataclass(frozen=True)
class VariantExpectation:
    """A guidance x seed variant expected to fail (``variants_expect:``): its guidance, its seed (None: every seed)."""

    guidance: float
    seed: int | None
    expect: Expectation


@dataclass(frozen=True)
class SourceFile:
    """A file or folder a section names: what it is, as written, resolved, and the line naming it."""

    kind: str  # "image", "mask", "folder", "mnist" (a folder of MNIST test files) or "report" (need not exist)
    what: str  # how an error names it: "input image 'scene'", "mask", "weights", "data", "report"
    value: str  # as written in the prompt file
    path: str  # absolute
    line: int
    image: str | None = None  # an input image's name; for a mask, the input image it must match in size


def at_least(low: int) -> Check:
    """A check that a number is ``>= low``."""
    return lambda value: None if value >= low else f"must be >= {low}"


def between(low: int, high: int) -> Check:
    """A check that a number lies in ``[low, high]``."""
    return lambda value: None if low <= value <= high else f"must be between {low} and {high}"


def int_list(value: Any, low: int, what: str, most: int = 64) -> str | None:
    """The problem of a list of 1 to ``most`` integers ``>= low`` named ``what``, if any."""
    if not isinstance(value, list) or not value or len(value) > most:
        return f"{what} must be a list of 1 to {most} integers"
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int) or item < low:
            return f"{what} must hold integers >= {low} (found {item!r})"
    return None


class Fields:
    """The values of one prompt file with the line each came from (1-based), and the checks every section uses."""

    def __init__(self, path: Path):
        self.path = path
        self.base_dir = path.resolve().parent  # relative paths in the file are relative to it
        self.lines: dict[tuple, int] = {}
        self.files: list[SourceFile] = []  # every file and folder the sections name, in file order
        self.constructor = yaml.SafeLoader("")  # YAML 1.1 safe typing of scalars, one for the whole file

    # --- reading -------------------------------------------------------------------------------------------

    def error(self, key: tuple, message: str) -> SpecError:
        """A ``FILE:LINE: message`` error at the line of ``key`` (line 1 when the key is not in the file)."""
        return SpecError(f"{self.path}:{self.line(key)}: {message}")

    def line(self, key: tuple) -> int:
        """The line of ``key``; 1 when the file does not have it."""
        return self.lines.get(key, 1)

    def to_python(self, node: yaml.Node, key: tuple = ()) -> Any:
        """A YAML node as dicts, lists and scalars, every key's line remembered."""
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

    # --- keys ----------------------------------------------------------------------------------------------

    def keys(self, key: tuple, data: Any, allowed: set[str], what: str) -> dict:
        """``data`` as a mapping of ``allowed`` keys only ('unknown key K in WHAT'), for the sections."""
        if not isinstance(data, dict):
            raise self.error(key, f"{what} must be a mapping")
        self._only(key, data, allowed, lambda name: f"unknown key {name!r} in {what}")
        return data

    def file_keys(self, key: tuple, data: dict, allowed: set[str], what: str) -> None:
        """A mapping of ``allowed`` keys only ('unknown WHAT K'), for the top level, ``defaults`` and prompts."""
        self._only(key, data, allowed, lambda name: f"unknown {what} {name!r}")

    def _only(self, key: tuple, data: dict, allowed: set[str], unknown: Callable[[str], str]) -> None:
        for name in data:
            if name not in allowed:
                raise self.error(key + (name,), f"{unknown(name)}; allowed: {', '.join(sorted(allowed))}")

    def chapter(self, root: tuple, data: Any, allowed: set[str]) -> tuple[dict, dict[str, Any]]:
        """A chapter section (``training:``, ``faithfulness:``; empty means defaults) and its line and title values."""
        data = self.keys(root, data if data is not None else {}, allowed, root[-1])
        values: dict[str, Any] = {"line": self.line(root)}
        if "title" in data:
            values["title"] = self.text(root + ("title",), data["title"], "title")
        return data, values

    def entries(self, key: tuple, value: Any, name: str) -> list[dict]:
        """A list of entries; one entry may be written without the list."""
        if isinstance(value, dict):
            return [value]
        if not isinstance(value, list) or not value:
            raise self.error(key, f"{name} must be a list of entries (or one mapping)")
        return value

    # --- values --------------------------------------------------------------------------------------------

    def setting(self, key: tuple, name: str, value: Any, types: tuple[type, ...], check: Check | None) -> None:
        """One value of a table of fields (``Settings``): one of ``types``, then ``check``'s problem, if any."""
        if isinstance(value, bool) and bool not in types or not isinstance(value, types):
            expected = " or ".join(t.__name__ for t in types)
            raise self.error(key + (name,), f"{name} must be {expected}, got {value!r}")
        problem = check(value) if check else None
        if problem and problem[0] in ". ":  # about a nested key ('.every ...'): point at its line
            nested = problem[1:].split(" ", 1)[0]
            inside = problem[0] == "." and key + (name, nested) in self.lines
            raise self.error(key + (name, nested) if inside else key + (name,), f"{name}{problem}")
        if problem:
            raise self.error(key + (name,), f"{name} {problem} (got {value!r})")

    def number(self, key: tuple, value: Any, name: str, *, integer: bool, low: float, high: float | None = None,
               low_open: bool = False) -> float | int:
        """An integer or a number in ``[low, high]`` (``(low, high]`` when ``low_open``); numbers become floats."""
        types = (int,) if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, types):
            raise self.error(key, f"{name} must be {'an integer' if integer else 'a number'}, got {value!r}")
        too_low = value <= low if low_open else value < low
        if too_low or (high is not None and value > high):
            bound = f"> {low}" if low_open else f">= {low}"
            upper = f" and <= {high}" if high is not None else ""
            raise self.error(key, f"{name} must be {bound}{upper} (got {value!r})")
        return value if integer else float(value)

    def numbers(self, key: tuple, value: Any, name: str, **kwargs: Any) -> tuple:
        """A non-empty list of ``number``s (same keyword arguments)."""
        if not isinstance(value, list) or not value:
            raise self.error(key, f"{name} must be a non-empty list")
        return tuple(self.number(key + (i,), v, name, **kwargs) for i, v in enumerate(value))

    def text(self, key: tuple, value: Any, name: str) -> str:
        """A non-empty string, stripped."""
        if not isinstance(value, str) or not value.strip():
            raise self.error(key, f"{name} must be a non-empty string")
        return value.strip()

    def slug(self, key: tuple, value: Any) -> str:
        """An id: lowercase letters, digits, '-' or '_', at most 64 characters (it names files)."""
        if not isinstance(value, str) or not SLUG.fullmatch(value):
            raise self.error(key, f"id {value!r} must be a slug: lowercase letters, digits, '-' or '_'")
        return value

    def expectation(self, key: tuple, entry: dict) -> Expectation | None:
        """``expect: fail`` and its ``reason`` (both or neither), from a prompt or an experiment entry."""
        if "expect" not in entry and "reason" not in entry:
            return None
        if entry.get("expect") != "fail":
            raise self.error(key + ("expect",), f"expect must be 'fail' (with a reason), got {entry.get('expect')!r}")
        reason = entry.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise self.error(key + ("expect",), "expect: fail needs a 'reason' saying which failure the figure teaches")
        return Expectation("fail", reason.strip())

    # --- files (recorded here, checked on disk by generator/bake/preflight.py) ---------------------------------

    def image(self, key: tuple, value: Any, what: str, kind: str = "image", image: str | None = None) -> str:
        """A PNG/JPEG/WebP file relative to the prompt file: its absolute path (recorded as a ``SourceFile``)."""
        if not isinstance(value, str) or not value:
            raise self.error(key, f"{what} must be a file path (relative to the prompt file)")
        return self._record(key, kind, what, value, str((self.base_dir / value).resolve()), image)

    def folder(self, key: tuple, value: Any, name: str, kind: str = "folder") -> str:
        """A folder relative to the prompt file: its absolute path (recorded as a ``SourceFile``)."""
        if not isinstance(value, str) or not value.strip():
            raise self.error(key, f"{name} must be a folder path (relative to the prompt file)")
        return self._record(key, kind, name, value, str((self.base_dir / value).resolve()))

    def report(self, key: tuple, value: Any) -> str:
        """A JSON report relative to the prompt file (it need not exist yet): its absolute path."""
        if not isinstance(value, str) or not value.strip() or not value.strip().endswith(".json"):
            raise self.error(key, "report must be the path of a .json file (relative to the prompt file), "
                                  "as `diffatlas eval shapes --out` writes it")
        return self._record(key, "report", "report", value, str((self.base_dir / value.strip()).resolve()))

    def _record(self, key: tuple, kind: str, what: str, value: str, path: str, image: str | None = None) -> str:
        self.files.append(SourceFile(kind, what, value, path, self.line(key), image))
        return path
