"""The prompt-file error tests' one helper: write a prompt file, read it as a bake would, expect one error line.

Every section's tests (prompts, experiments, training, faithfulness) use it as ``from spec.spec_errors import ...``
(``tests/`` is on ``sys.path`` through its conftest). Reading a file as a bake would means loading it and then
checking the files it names (generator/bake/preflight.py ``check_files``), which is where a missing input image
or weights folder is reported; checks against the model are not run.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from generator.spec.prompt_set import PromptSet, SpecError, load_prompt_set


def write_prompt_file(folder: Path, text: str, name: str = "set.yaml") -> Path:
    """``text`` written to ``folder/name``; its path."""
    path = folder / name
    path.write_text(text)
    return path


def load_checked(path: Path) -> PromptSet:
    """The prompt file loaded and the files it names checked, as ``diffatlas bake`` does before any work."""
    from generator.bake.preflight import check_files

    prompt_set = load_prompt_set(path)
    check_files(prompt_set)
    return prompt_set


def assert_one_line_error(path: Path, line: int, message: str) -> str:
    """Reading ``path`` fails with one line ``PATH:LINE: ...`` that contains ``message``; that line."""
    with pytest.raises(SpecError) as error:
        load_checked(path)
    text = str(error.value)
    assert text.startswith(f"{path}:{line}: "), text
    assert message in text
    assert "\n" not in text
    return text
