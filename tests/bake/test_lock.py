"""The output-folder lock: a second bake into a locked folder is refused with one line (exit 2) and writes
nothing; a lock left by a dead process is removed (pid check) and the bake goes on."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from generator.bake.lock import BakeLock, LockedError, lock_folder

PROMPTS = """\
model: testing:tiny-sd
defaults: {steps: 2, width: 32, height: 32, preview_size: 16, seed: 1, daam: false, jumps: false}
prompts:
  - {id: cat, text: a red cat}
"""


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def bake_cli(monkeypatch, capsys, prompt_file: Path, out: Path, *extra: str) -> tuple[int, str]:
    """`diffatlas bake` in this process: (exit code, stderr)."""
    from generator.cli import main

    monkeypatch.setattr(sys, "argv", ["diffatlas", "bake", str(prompt_file), "--out", str(out), "--device", "cpu",
                                      *extra])
    code = 0
    try:
        main()
    except SystemExit as exit_info:
        code = exit_info.code
    return code, capsys.readouterr().err


@pytest.fixture
def other_process():
    """A live process that is not this one (the holder of a lock)."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield process
    process.kill()
    process.wait()


def hold_lock(out: Path, pid: int) -> None:
    """Write the lock as process ``pid`` on this host would."""
    lock_folder(out).mkdir(parents=True)
    record = {"pid": pid, "host": socket.gethostname(), "since": time.time()}
    (lock_folder(out) / "owner.json").write_text(json.dumps(record))


def test_a_second_bake_into_a_locked_folder_exits_2_with_one_line_and_writes_nothing(tmp_path, monkeypatch, capsys,
                                                                                     other_process):
    prompts, out = tmp_path / "set.yaml", tmp_path / "generated"
    prompts.write_text(PROMPTS)
    hold_lock(out, other_process.pid)
    before = tree(out)

    for extra in ((), ("--processes", "2")):
        code, stderr = bake_cli(monkeypatch, capsys, prompts, out, *extra)
        assert code == 2
        assert stderr.count("\n") == 1 and stderr.startswith(
            f"error: {out} is being baked by process {other_process.pid} on {socket.gethostname()}")
        assert tree(out) == before  # nothing written: no asset, no manifest, no index, the lock untouched


def test_a_stale_lock_of_a_dead_process_is_removed_and_the_bake_completes(tmp_path, monkeypatch, capsys):
    prompts, out = tmp_path / "set.yaml", tmp_path / "generated"
    prompts.write_text(PROMPTS)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    hold_lock(out, dead.pid)

    code, stderr = bake_cli(monkeypatch, capsys, prompts, out)
    assert code == 0, stderr
    assert f"removed a stale lock left by process {dead.pid} that is no longer running" in stderr
    assert (out / "prompts" / "cat.json").is_file() and (out / "index.json").is_file()
    assert not lock_folder(out).exists()  # released after the bake


def test_the_lock_is_exclusive_within_one_machine(tmp_path):
    first, second = BakeLock(tmp_path), BakeLock(tmp_path)
    assert first.acquire() == ""
    with pytest.raises(LockedError, match=f"being baked by process {os.getpid()}"):
        second.acquire()
    first.release()
    assert second.acquire() == "" and lock_folder(tmp_path).is_dir()
    second.release()
    assert not lock_folder(tmp_path).exists()
