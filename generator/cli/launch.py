"""CLI stage: `diffatlas bake --processes N` starts N local bake processes the way `accelerate launch` does.

Each child is the same `diffatlas bake` command, with the environment a ``torch.distributed`` launcher sets
(``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``LOCAL_WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``), so it takes
exactly the path it takes under ``accelerate launch`` or ``torchrun`` (accelerate's ``PartialState`` reads it;
generator/bake/shard.py). The launcher only starts, watches and stops: when one process dies (killed, out of
memory, a disk error), the others are stopped too (they would wait for it forever at the final barrier) and
one line says what happened; what every process finished before stays, and the same command bakes the rest.

CPU results depend on the number of torch threads (the order of float sums in the kernels): every child keeps
the thread count a single-process bake would use here (generator/bake/shard.py), so a sharded bake gives its
bytes. ``accelerate launch`` and ``torchrun`` set ``OMP_NUM_THREADS=1`` unless told otherwise: compare with a
single-process bake under the same ``OMP_NUM_THREADS``.

The checks that need the model's files run in the children (process 1 prints the one line of a mistake), not
here first: this process imports neither torch nor diffusers, so the children start at once.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from generator.errors import UserError

STOP_GRACE_S = 5.0


def free_port() -> int:
    """A TCP port free on this machine now (for process 0's rendezvous)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def child_environment(index: int, count: int, port: int, device: str) -> dict[str, str]:
    """The environment of child ``index``: the torch.distributed launcher variables and the CPU flag.

    No torch here: the launcher only starts processes, and importing torch would add seconds before they start.
    """
    environment = {**os.environ, "RANK": str(index), "LOCAL_RANK": str(index), "WORLD_SIZE": str(count),
                   "LOCAL_WORLD_SIZE": str(count), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
    if device == "cpu":
        environment["ACCELERATE_USE_CPU"] = "true"
    return environment


def signal_name(returncode: int) -> str:
    """'SIGKILL' for -9, 'exit 2' for 2."""
    if returncode < 0:
        try:
            return signal.Signals(-returncode).name
        except ValueError:
            return f"signal {-returncode}"
    return f"exit {returncode}"


def launch(arguments: list[str], count: int, device: str, out: Path) -> None:
    """Run ``python -m generator bake ARGUMENTS`` as ``count`` processes; raise one line if any failed."""
    port = free_port()
    children = [subprocess.Popen([sys.executable, "-m", "generator", "bake", *arguments],
                                 env=child_environment(index, count, port, device)) for index in range(count)]
    failed: tuple[int, int] | None = None
    try:
        while True:
            codes = [child.poll() for child in children]  # every child, every time: one may die while others run
            failed = next(((index, code) for index, code in enumerate(codes) if code not in (None, 0)), None)
            if failed is not None or all(code is not None for code in codes):
                break
            time.sleep(0.1)
    finally:
        _stop(children)
    if failed is None:
        failed = next(((i, c.returncode) for i, c in enumerate(children) if c.returncode), None)
    if failed is None:
        return
    index, code = failed
    if code == 2 and all(c.returncode in (0, 2) or c.returncode < 0 for c in children):
        raise SystemExit(2)  # the process said why on its own error line
    raise UserError(f"process {index + 1} of {count} (pid {children[index].pid}) stopped ({signal_name(code)}); "
                    f"the other processes were stopped too; everything finished is kept in {out}: "
                    "run the same command again to bake only what is missing")


def _stop(children: list[subprocess.Popen]) -> None:
    """Stop the children still running: SIGTERM, then SIGKILL after a grace period."""
    running = [child for child in children if child.poll() is None]
    for child in running:
        child.terminate()
    deadline = time.monotonic() + STOP_GRACE_S
    for child in running:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
