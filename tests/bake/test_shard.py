"""Sharded bakes: `--processes 2` and `accelerate launch` write exactly the files of a single-process bake; a
process killed with SIGKILL loses nothing the others finished and the rerun completes to the same bytes; a
prompt that fails on one process is named with its process, the rest is kept, and the rerun bakes only it.

Every bake here is a real `python -m generator bake` in a subprocess (the launcher path is the product), with
one torch thread per process: CPU results depend on the thread count, and the reference bake uses the same.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from generator.bake.shard import WorkItem, prompt_cost, split_by_cost
from generator.spec.prompt_set import load_prompt_set

pytestmark = pytest.mark.slow

PROMPTS = """\
model: testing:tiny-sd
defaults: {steps: 3, width: 32, height: 32, preview_size: 16, seed: 1, daam: false, jumps: false}
prompts:
  - {id: cat, text: a red cat}
  - {id: dog, text: a dog, steps: 6, jumps: {every: 2, steps: [1, 2]}}
  - {id: owl, text: an owl at night, seed: 2}
  - {id: fox, text: a fox, steps: 4, daam: true}
  - {id: elk, text: an elk, scheduler: euler}
"""
ROOT = Path(__file__).resolve().parents[2]


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def environment(**extra: str) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT), **extra}


def bake(prompts: Path, out: Path, *options: str, launcher: tuple[str, ...] = ("-m", "generator"),
         **extra: str) -> subprocess.CompletedProcess:
    command = [sys.executable, *launcher, "bake", str(prompts), "--out", str(out), "--device", "cpu", *options]
    return subprocess.run(command, capture_output=True, text=True, env=environment(**extra), timeout=300, cwd=ROOT)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The prompt file and the tree a single-process bake writes."""
    root = tmp_path_factory.mktemp("shard")
    (root / "set.yaml").write_text(PROMPTS)
    result = bake(root / "set.yaml", root / "single")
    assert result.returncode == 0, result.stderr
    return root / "set.yaml", tree(root / "single")


def test_the_split_balances_expected_cost_not_count(reference):
    prompt_set = load_prompt_set(reference[0])
    items = [WorkItem("prompt", p.id, prompt_cost(p)) for p in prompt_set.prompts]
    shares = split_by_cost(items, 2)
    loads = [sum(item.cost for item in share) for share in shares]
    assert sorted(item.name for share in shares for item in share) == sorted(p.id for p in prompt_set.prompts)
    assert max(loads) - min(loads) <= max(item.cost for item in items)  # LPT's bound
    assert {len(share) for share in shares} != {2, 3} or max(loads) / min(loads) < 1.5
    assert [i.name for i in shares[0]] == [i.name for i in items if i in shares[0]]  # file order kept


def test_two_processes_write_exactly_the_files_of_one(reference, tmp_path):
    prompts, single = reference
    result = bake(prompts, tmp_path / "out", "--processes", "2")
    assert result.returncode == 0, result.stderr
    assert "[process 2 of 2]" in result.stderr and "5 baked, 0 cached" in result.stderr
    assert tree(tmp_path / "out") == single  # byte for byte, and no lock or progress file left


def test_accelerate_launch_writes_exactly_the_files_of_one(reference, tmp_path):
    prompts, single = reference
    launcher = ("-m", "accelerate.commands.launch", "--cpu", "--num_processes", "2", "--num_machines", "1",
                "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "generator")
    result = bake(prompts, tmp_path / "out", launcher=launcher)
    assert result.returncode == 0, result.stderr
    assert tree(tmp_path / "out") == single


def children_of(pid: int) -> dict[int, int]:
    """RANK -> pid of the launcher's bake processes."""
    import psutil

    found = {}
    for child in psutil.Process(pid).children():
        try:
            rank = child.environ().get("RANK")
        except psutil.Error:
            continue
        if rank is not None:
            found[int(rank)] = child.pid
    return found


def test_a_process_killed_mid_bake_loses_nothing_and_the_rerun_completes_identically(reference, tmp_path):
    prompts, single = reference
    out = tmp_path / "out"
    command = [sys.executable, "-m", "generator", "bake", str(prompts), "--out", str(out), "--device", "cpu",
               "--processes", "2"]
    launcher = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=environment(), cwd=ROOT)
    deadline = time.monotonic() + 240
    while not list((out / "prompts").glob("*.json")) and time.monotonic() < deadline:
        time.sleep(0.02)
    finished_before = tree(out)
    victim = children_of(launcher.pid).get(1)
    assert victim is not None, "process 2 had already ended: the bake was too quick to kill mid-way"
    os.kill(victim, signal.SIGKILL)
    stderr = launcher.communicate(timeout=120)[1]

    assert launcher.returncode == 2
    error_lines = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and f"error: process 2 of 2 (pid {victim}) stopped (SIGKILL)" in error_lines[0]
    kept = tree(out)
    manifests = [name for name in finished_before if name.startswith("prompts/")]
    assert manifests and all(kept[name] == finished_before[name] for name in manifests)  # nothing finished lost
    assert len([name for name in kept if name.startswith("prompts/")]) < 5  # it really stopped mid-bake

    rerun = bake(prompts, out, "--processes", "2")
    assert rerun.returncode == 0, rerun.stderr
    for name in manifests:  # what was finished is not baked again
        assert f"{Path(name).stem}: unchanged, cached" in rerun.stderr
    assert tree(out) == single


def test_a_prompt_failing_on_one_process_is_named_with_it_and_the_rerun_bakes_only_it(reference, tmp_path):
    prompts, single = reference
    prompt_set = load_prompt_set(prompts)
    shares = split_by_cost([WorkItem("prompt", p.id, prompt_cost(p)) for p in prompt_set.prompts], 2)
    failing = shares[1][0].name  # the first prompt process 2 bakes
    inject = tmp_path / "inject"
    inject.mkdir()
    (inject / "sitecustomize.py").write_text(textwrap.dedent(f"""\
        import os
        if os.environ.get("RANK") == "1":
            import generator.bake.runner as runner
            original = runner.bake_prompt
            def bake_prompt(adapter, prompt, *args, **kwargs):
                if prompt.id == {failing!r}:
                    raise MemoryError("out of memory (injected)")
                return original(adapter, prompt, *args, **kwargs)
            runner.bake_prompt = bake_prompt
        """))
    out = tmp_path / "out"
    result = bake(prompts, out, "--processes", "2", PYTHONPATH=f"{inject}{os.pathsep}{ROOT}")
    assert result.returncode == 2
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert error_lines == [f"error: 1 part failed: {failing} failed on process 2 of 2: out of memory (injected); "
                           "everything else is baked and kept: run the same command again to bake only what is "
                           "missing"]
    others = [p.id for p in prompt_set.prompts if p.id != failing]
    assert all((out / "prompts" / f"{i}.json").read_bytes() == single[f"prompts/{i}.json"] for i in others)
    assert not (out / "prompts" / f"{failing}.json").exists() and not (out / "index.json").exists()

    rerun = bake(prompts, out, "--processes", "2")
    assert rerun.returncode == 0, rerun.stderr
    assert "1 baked, 4 cached" in rerun.stderr and f"{failing}: baked" in rerun.stderr
    assert tree(out) == single


def test_a_mistake_in_the_prompt_file_is_one_line_from_all_processes(tmp_path):
    prompts = tmp_path / "bad.yaml"
    prompts.write_text(PROMPTS.replace("scheduler: euler", "scheduler: no-such-scheduler"))
    single = bake(prompts, tmp_path / "one")
    sharded = bake(prompts, tmp_path / "two", "--processes", "2")
    assert single.returncode == sharded.returncode == 2
    assert single.stderr.count("\n") == 1 and "no-such-scheduler" in single.stderr
    assert sharded.stderr == single.stderr  # process 1 says it once; process 2 and the launcher stay silent
    assert not (tmp_path / "two").exists()
