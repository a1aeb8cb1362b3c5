"""Benchmark: a bake as 2 processes against 1 (issue 20): the wall-time ratio (ideal 0.5) and the byte-identity
check, in one run.

Both bakes are `diffatlas bake` of the same prompt file into fresh folders, with the same torch thread count per
process (CPU results depend on it; ``--threads``, default 1, so that two processes fit two cores); the sharded
one is `--processes 2`. The default prompt file is prompts/testing.yaml (tiny random Stable Diffusion: 2 prompts
of unequal cost, every section on); ``--copies K`` repeats its prompts K times under new ids and seeds, so the
split has more than two parts to balance.

    nice .venv/bin/python bench/shard.py                   # prompts/testing.yaml, 1 thread per process
    nice .venv/bin/python bench/shard.py --copies 3        # 6 prompts
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def prompt_file(source: Path, copies: int, folder: Path) -> Path:
    """``source`` with its prompts repeated ``copies`` times (ids suffixed, seeds shifted)."""
    data = yaml.safe_load(source.read_text())
    prompts = []
    for copy in range(copies):
        for prompt in data["prompts"]:
            prompts.append({**prompt, "id": f"{prompt['id']}-{copy}" if copies > 1 else prompt["id"],
                            "seed": int(prompt.get("seed", 0)) + 100 * copy})
    data["prompts"] = prompts
    path = folder / "prompts.yaml"
    class NoAliases(yaml.SafeDumper):  # prompt files refuse anchors; repeated values are written out
        def ignore_aliases(self, data: object) -> bool:
            return True

    path.write_text(yaml.dump(data, Dumper=NoAliases, sort_keys=False))
    return path


def snapshot(folder: Path) -> Path:
    """A copy of the generator package: both bakes run the same code even while someone edits the working tree
    (the cache key hashes the baking code, so an edit between the two bakes would change every manifest)."""
    shutil.copytree(REPO / "generator", folder / "code" / "generator", ignore=shutil.ignore_patterns("__pycache__"))
    return folder / "code"


def timed_bake(prompts: Path, out: Path, processes: int, threads: int, code: Path) -> float:
    """Wall seconds of one `diffatlas bake` (a failure ends the benchmark with its output)."""
    environment = {**os.environ, "OMP_NUM_THREADS": str(threads), "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(code)}
    command = [sys.executable, "-m", "generator", "bake", str(prompts), "--out", str(out), "--device", "cpu"]
    command += ["--processes", str(processes)] if processes > 1 else []
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=environment, cwd=code)
    seconds = time.perf_counter() - started
    if result.returncode:
        sys.exit(f"bake with {processes} process(es) failed:\n{result.stderr}")
    return seconds


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=Path, default=REPO / "prompts" / "testing.yaml")
    parser.add_argument("--copies", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process, the same in both bakes")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-shard-") as scratch:
        folder = Path(scratch)
        prompts = prompt_file(options.prompts, options.copies, folder)
        code = snapshot(folder)
        single = timed_bake(prompts, folder / "one", 1, options.threads, code)
        sharded = timed_bake(prompts, folder / "two", 2, options.threads, code)
        one, two = tree(folder / "one"), tree(folder / "two")
        identical = one == two
        count = len(yaml.safe_load(prompts.read_text())["prompts"])
        print(f"{options.prompts.name} x{options.copies} ({count} prompts), {options.threads} thread(s) per process, "
              f"{os.cpu_count()} CPU(s)")
        print(f"1 process:   {single:7.1f} s")
        print(f"2 processes: {sharded:7.1f} s   ratio {sharded / single:.2f} (ideal 0.50)")
        print(f"byte-identical: {identical} ({len(one)} files, {sum(map(len, one.values())) / 1e6:.2f} MB)")
        if not identical:
            import difflib

            differing = sorted(name for name in set(one) | set(two) if one.get(name) != two.get(name))
            for name in differing[:2]:
                if name.endswith(".json") and name in one and name in two:
                    lines = difflib.unified_diff(one[name].decode().splitlines(), two[name].decode().splitlines(),
                                                 lineterm="", n=0)
                    print("\n".join(list(lines)[:12]))
            sys.exit(f"files differ: {differing[:10]}")


if __name__ == "__main__":
    main()
