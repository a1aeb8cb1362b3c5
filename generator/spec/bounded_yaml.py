"""Spec stage: reading a prompt file's YAML within fixed bounds, before anything is built from it.

Prompt files come from other people (students submit prompts, instructors bake them), so reading one must
cost little whatever it holds. The bounds, checked in this order, each refused with one ``FILE:LINE:`` line:

- the file's size, from ``stat`` before a byte is read (a 100 MB file is refused at once);
- anchors and aliases (``&name`` / ``*name``): a 1 KB file of nested aliases (a "billion laughs") would
  expand to gigabytes, and no prompt file needs them; refused on the event stream, where nothing expands;
- explicit tags (``!!python/object`` and the like): a prompt file holds plain values only;
- nesting depth (a recursive composer would overflow the stack) and the length of every string.

Only then is the document composed into nodes (libyaml when installed: it is 10x faster than pure Python).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from generator.errors import UserError

MAX_FILE_BYTES = 1024 * 1024  # the shipped prompt files are under 4 KB; a 1000-prompt course is about 100 KB
MAX_STRING_CHARS = 32 * 1024  # every key and value; prompt texts stop at a model's token limit long before
MAX_DEPTH = 32  # mappings and lists inside each other; the experiments section, the deepest, uses 6

LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
NESTING_START = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
NESTING_END = (yaml.MappingEndEvent, yaml.SequenceEndEvent)


class SpecError(UserError):
    """A prompt file mistake, reported as 'FILE:LINE: message'."""


def read_bounded(path: Path) -> str:
    """The file's text, refused when it is larger than ``MAX_FILE_BYTES`` or not UTF-8."""
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise SpecError(f"{path}:1: the file is {_mebibytes(size)}; a prompt file may be at most "
                        f"{_mebibytes(MAX_FILE_BYTES)}")
    with path.open("rb") as handle:
        data = handle.read(MAX_FILE_BYTES + 1)  # a file still growing after stat() is cut off here
    if len(data) > MAX_FILE_BYTES:
        raise SpecError(f"{path}:1: the file is over {_mebibytes(MAX_FILE_BYTES)}; a prompt file may be at most that")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise SpecError(f"{path}:{line}: not UTF-8 text (byte {data[error.start]:#04x}); "
                        "save the file as UTF-8") from None


def _mebibytes(size: int) -> str:
    return f"{size / 2**20:.1f} MiB" if size % 2**20 else f"{size // 2**20} MiB"


def check_events(path: Path, text: str) -> None:
    """Refuse anchors, aliases, deep nesting and long strings, streaming events (nothing is expanded)."""
    depth = 0
    for event in yaml.parse(text, Loader=LOADER):
        line = event.start_mark.line + 1 if event.start_mark else 1
        if isinstance(event, yaml.AliasEvent):
            raise SpecError(f"{path}:{line}: YAML alias *{event.anchor} refused: prompt files may not use anchors "
                            "or aliases (write the value out)")
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            raise SpecError(f"{path}:{line}: YAML anchor &{anchor} refused: prompt files may not use anchors or "
                            "aliases (write the value out)")
        tag = getattr(event, "tag", None)
        if tag not in (None, "!"):  # '!!python/object' and friends: plain YAML values only
            shown = tag.replace("tag:yaml.org,2002:", "!!")
            raise SpecError(f"{path}:{line}: YAML tag {shown} refused: prompt files hold plain values only")
        if isinstance(event, NESTING_START):
            depth += 1
            if depth > MAX_DEPTH:
                raise SpecError(f"{path}:{line}: nested more than {MAX_DEPTH} levels deep; prompt files need far fewer")
        elif isinstance(event, NESTING_END):
            depth -= 1
        elif isinstance(event, yaml.ScalarEvent) and len(event.value) > MAX_STRING_CHARS:
            raise SpecError(f"{path}:{line}: a string of {len(event.value)} characters; at most {MAX_STRING_CHARS} "
                            "are allowed")


def compose_bounded(path: Path) -> yaml.Node | None:
    """The file's single YAML document as nodes (None when empty), within the bounds above."""
    text = read_bounded(path)
    try:
        check_events(path, text)
        return yaml.compose(text, Loader=LOADER)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark else 1
        raise SpecError(f"{path}:{line}: invalid YAML: {error.problem or error.context}") from None
    except yaml.YAMLError as error:  # unmarked (e.g. a reader error on control characters)
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise SpecError(f"{path}:1: invalid YAML: {message}") from None
