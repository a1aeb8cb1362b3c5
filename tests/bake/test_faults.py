"""Faults: a full disk, a read-only output folder and damaged cache files end in one line, lose nothing already
baked, and the rerun completes. The disk faults use a small tmpfs mounted for the test (CI runs as root)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from generator.bake.manifest import manifest_assets
from generator.bake.runner import bake
from generator.spec.prompt_set import load_prompt_set

HEAD = """\
model: testing:tiny-sd
defaults: {steps: 3, width: 64, height: 48, preview_size: 40, seed: 3, daam: false, jumps: false}
prompts:
  - {id: cat, text: a red cat}
"""
DOG = "  - {id: dog, text: a dog}\n"


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` by relative path, with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_complete(out: Path, ids: list[str]) -> None:
    """The index lists ``ids``; every manifest's assets exist and hash to their names; no temporary file is left."""
    assert [p["id"] for p in json.loads((out / "index.json").read_text())["prompts"]] == ids
    for prompt_id in ids:
        for asset in manifest_assets(json.loads((out / "prompts" / f"{prompt_id}.json").read_text())):
            assert Path(asset).stem == hashlib.sha256((out / asset).read_bytes()).hexdigest()[:16]
    assert not list(out.rglob("*.tmp"))


def bake_cli(monkeypatch, capsys, prompt_file: Path, out: Path) -> tuple[int, str]:
    """`diffatlas bake` in this process: (exit code, stderr)."""
    from generator.cli import main

    monkeypatch.setattr(sys, "argv", ["diffatlas", "bake", str(prompt_file), "--out", str(out), "--device", "cpu"])
    code = 0
    try:
        main()
    except SystemExit as exit_info:
        code = exit_info.code
    return code, capsys.readouterr().err


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs mounted at tmp_path/disk (unmounted afterwards); skipped where mounting is not allowed."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command here; the disk faults need a tmpfs (the CI runs as root and has one)")
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0755", "tmpfs", str(mount_point)],
                            capture_output=True, text=True)
    if result.returncode:
        pytest.skip(f"cannot mount a tmpfs ({result.stderr.strip() or 'mount failed'}): needs root with CAP_SYS_ADMIN")
    yield mount_point
    subprocess.run(["mount", "-o", "remount,rw", str(mount_point)], capture_output=True)
    subprocess.run(["umount", "-l", str(mount_point)], capture_output=True)


def fill(disk: Path, leave: int) -> Path:
    """Write a filler file so that about ``leave`` bytes stay free on ``disk``."""
    stats = os.statvfs(disk)
    filler = disk / "filler"
    filler.write_bytes(b"\0" * max(0, stats.f_bavail * stats.f_frsize - leave))
    return filler


def test_disk_full_mid_bake_is_one_line_keeps_what_was_baked_and_the_rerun_completes(small_disk, tmp_path,
                                                                                     monkeypatch, capsys):
    prompts, out = tmp_path / "set.yaml", small_disk / "generated"
    prompts.write_text(HEAD)
    assert bake_cli(monkeypatch, capsys, prompts, out)[0] == 0
    before = tree(out)
    prompts.write_text(HEAD + DOG)
    filler = fill(small_disk, leave=16 * 1024)  # room for a few of dog's assets, not all (about 60 KB)

    code, stderr = bake_cli(monkeypatch, capsys, prompts, out)
    assert code == 2
    error_lines = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and stderr.rstrip("\n").endswith(error_lines[0])
    assert re.fullmatch(rf"error: cannot write {re.escape(str(out))}/\S+: No space left on device; the disk is full; "
                        r"free some space and run the same command again \(what is baked is kept\)", error_lines[0])
    after = tree(out)
    assert {name: after.get(name) for name in before} == before  # cat, its assets and the index: byte-identical
    assert not (out / "prompts" / "dog.json").exists() and not list(out.rglob("*.tmp"))
    assert set(after) - set(before)  # the failure came mid-bake: some of dog's assets had been written

    filler.unlink()
    assert bake_cli(monkeypatch, capsys, prompts, out)[0] == 0
    assert_complete(out, ["cat", "dog"])
    assert (out / "prompts" / "cat.json").read_bytes() == before["prompts/cat.json"]


def test_read_only_output_is_one_line_before_any_work_and_the_rerun_completes(small_disk, tmp_path, monkeypatch,
                                                                              capsys):
    prompts, out = tmp_path / "set.yaml", small_disk / "generated"
    prompts.write_text(HEAD)
    assert bake_cli(monkeypatch, capsys, prompts, out)[0] == 0
    before = tree(out)
    prompts.write_text(HEAD + DOG)
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)

    code, stderr = bake_cli(monkeypatch, capsys, prompts, out)
    assert code == 2
    assert stderr == (f"error: cannot write {out}: Read-only file system; the folder is on a read-only file system; "
                      "choose another output folder (--out)\n")
    assert tree(out) == before

    subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
    assert bake_cli(monkeypatch, capsys, prompts, out)[0] == 0
    assert_complete(out, ["cat", "dog"])


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through permission bits; the tmpfs test covers root")
def test_unwritable_output_folder_is_one_line(tmp_path, monkeypatch, capsys):
    prompts, out = tmp_path / "set.yaml", tmp_path / "generated"
    prompts.write_text(HEAD)
    out.mkdir()
    out.chmod(0o555)
    try:
        code, stderr = bake_cli(monkeypatch, capsys, prompts, out)
    finally:
        out.chmod(0o755)
    assert code == 2 and stderr.startswith(f"error: cannot write {out}: Permission denied; the folder is not writable")
    assert stderr.count("\n") == 1 and not any(out.iterdir())


# --- damaged cache files: noticed by hash, rebaked, never reused ---------------------------------------------


@pytest.fixture
def baked_twice(tmp_path, tiny_sd):
    """Bake cat and dog into tmp_path/generated; returns (prompt set, out folder, the tree as baked)."""
    (tmp_path / "set.yaml").write_text(HEAD + DOG)
    prompt_set = load_prompt_set(tmp_path / "set.yaml")
    out = tmp_path / "generated"
    bake(prompt_set, out, adapter=tiny_sd)
    return prompt_set, out, tree(out)


def rebake(prompt_set, out, tiny_sd) -> tuple[dict[str, str], list[str]]:
    events: list[str] = []
    outcomes = bake(prompt_set, out, adapter=tiny_sd, on_event=events.append)
    return {o.prompt_id: o.status for o in outcomes}, events


def cat_asset(out: Path) -> str:
    return json.loads((out / "prompts" / "cat.json").read_text())["final"]["src"]


@pytest.mark.parametrize("damage", ["flip a byte", "cut short", "delete"])
def test_a_damaged_asset_is_noticed_by_hash_and_rebaked(baked_twice, tiny_sd, damage):
    prompt_set, out, original = baked_twice
    asset = cat_asset(out)
    path = out / asset
    data = bytearray(path.read_bytes())
    if damage == "flip a byte":
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
    elif damage == "cut short":
        path.write_bytes(bytes(data[: len(data) // 2]))
    else:
        path.unlink()
    statuses, events = rebake(prompt_set, out, tiny_sd)
    assert statuses == {"cat": "baked", "dog": "cached"}
    reason = "is missing" if damage == "delete" else "does not match its content hash"
    assert f"cat: damaged: {asset} {reason}; baking it again" in events
    assert tree(out) == original  # the rebake restored every byte


@pytest.mark.parametrize("damage", ["edited text", "invalid JSON", "hash removed"])
def test_a_damaged_manifest_is_noticed_by_hash_and_rebaked(baked_twice, tiny_sd, damage):
    prompt_set, out, original = baked_twice
    path = out / "prompts" / "cat.json"
    manifest = json.loads(path.read_text())
    if damage == "edited text":  # still valid JSON with the right cache key: only the content hash can tell
        path.write_text(path.read_text().replace('"a red cat"', '"<script>alert(1)</script>"'))
    elif damage == "invalid JSON":
        path.write_text(path.read_text()[:100])
    else:
        del manifest["provenance"]["content_hash"]
        path.write_text(json.dumps(manifest))
    statuses, events = rebake(prompt_set, out, tiny_sd)
    assert statuses == {"cat": "baked", "dog": "cached"}
    if damage != "hash removed":  # a manifest without a hash is treated as stale (written by older code)
        assert "cat: damaged: cat.json does not match its content hash; baking it again" in events
    assert tree(out) == original
