"""Bake stage: which process bakes what, when a bake runs as several processes (accelerate or ``--processes``).

A sharded bake is the same command started N times by a launcher that sets the usual ``torch.distributed``
environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``): ``accelerate launch``,
``torchrun``, or ``diffatlas bake --processes N`` (generator/cli/launch.py). Hugging Face accelerate's
``PartialState`` reads it (one process, no launcher: index 0 of 1) and gives the three things the bake needs:
every process's index, a barrier, and objects broadcast or gathered between processes.

Work is split by expected cost, not count: a prompt of 50 steps with DAAM, jumps and a 3x3 variant grid costs
many times one of 8 steps, and counting them alike leaves one process working while the others wait. The split
is the greedy "longest first onto the least loaded process" rule (LPT, Graham 1969: within 4/3 of the best);
it depends only on the items and their costs, so every process computes the same split without talking.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Sequence

from generator.spec.prompt_set import PromptSpec

BARRIER_TIMEOUT = timedelta(hours=12)  # a slow shard may wait long for the last one at the final barrier
DEFAULT_STEPS = 25  # when a prompt leaves steps to the model: relative costs only need a common guess
DEFAULT_PIXELS = 512 * 512
DAAM_FACTOR = 1.3  # the attention capture and aggregation on top of the denoiser's own time
CHAPTER_COST = {"experiments": 40, "training": 400, "faithfulness": 40}  # in units of one default prompt's cost


@dataclass(frozen=True)
class WorkItem:
    """One manifest of the bake: a prompt (``kind`` 'prompt') or a chapter (``kind`` its section name)."""

    kind: str
    name: str
    cost: float


def launched_processes() -> int:
    """How many processes a launcher started for this bake (1 without one), read from its environment."""
    for name in ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE"):
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return 1


class ProcessGroup:
    """This process's place in the bake: ``index`` of ``count``, a barrier and object exchange.

    One process without a launcher needs none of accelerate's machinery (the methods are then trivial), so
    accelerate is imported only when a launcher started several.
    """

    def __init__(self, index: int = 0, count: int = 1, device: str | None = None):
        self.index, self.count, self.device = index, count, device

    @classmethod
    def from_environment(cls, device: str = "auto") -> ProcessGroup:
        """The group a launcher set up (accelerate's PartialState), or a group of one."""
        if launched_processes() <= 1:
            return cls()
        import torch
        from accelerate import PartialState

        cpu = device == "cpu" or os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes") \
            or not torch.cuda.is_available()
        threads = torch.get_num_threads()
        state = PartialState(cpu=cpu, timeout=BARRIER_TIMEOUT)
        torch.set_num_threads(threads)  # accelerate divides the cores; a single bake's count keeps its bytes
        accelerator = None if cpu else str(state.device)  # each process on its own GPU (cuda:LOCAL_RANK)
        return cls(state.process_index, state.num_processes, accelerator)

    @property
    def is_main(self) -> bool:
        """Process 0 takes the lock, cleans up, plans and merges the index."""
        return self.index == 0

    def label(self) -> str:
        """'process 2 of 4' (1-based, as people count), '' for a single process."""
        return f"process {self.index + 1} of {self.count}" if self.count > 1 else ""

    def barrier(self) -> None:
        """Wait until every process got here."""
        if self.count > 1:
            from accelerate import PartialState

            PartialState().wait_for_everyone()

    def leave(self) -> None:
        """Every process leaves the group together, once past its last exchange: a barrier, then the group is
        destroyed. Without it a process could still hold the group at interpreter exit while process 0, which
        hosts its store, had already gone, and be aborted (SIGABRT) after a clean end."""
        if self.count > 1:
            from accelerate import PartialState

            self.barrier()
            PartialState().destroy_process_group()

    def broadcast(self, value: Any) -> Any:
        """Process 0's ``value``, in every process."""
        if self.count == 1:
            return value
        from accelerate.utils import broadcast_object_list

        return broadcast_object_list([value])[0]

    def gather(self, values: list) -> list:
        """Every process's ``values`` concatenated in process order, in every process."""
        if self.count == 1:
            return list(values)
        from accelerate.utils import gather_object

        return list(gather_object(list(values)))


def prompt_cost(prompt: PromptSpec) -> float:
    """Expected cost of a prompt in denoiser evaluations times pixels (relative; defaults are guessed alike)."""
    settings = prompt.settings
    steps = settings.steps or DEFAULT_STEPS
    pixels = (settings.width or 512) * (settings.height or 512)  # the model's default size is the same for all
    evaluations = steps * (2 if prompt.compare else 1) * (DAAM_FACTOR if settings.daam else 1.0)
    jumps = settings.jumps
    if jumps is not None:
        origins = len(range(0, steps, jumps.every)) if jumps.every else 0
        evaluations += (origins + len(jumps.at)) * sum(jumps.steps)
    variants = max(1, len(settings.guidances)) * max(1, len(settings.seeds))
    if variants > 1:
        evaluations += variants * steps
    return float(evaluations * pixels / DEFAULT_PIXELS)


def chapter_cost(section: str) -> float:
    """A chapter's rough cost, in units of a default prompt (chapters are few: the order matters, not the value)."""
    return CHAPTER_COST.get(section, 40) * DEFAULT_STEPS * DAAM_FACTOR


def split_by_cost(items: Sequence[WorkItem], count: int) -> list[list[WorkItem]]:
    """``count`` lists of items with nearly equal total cost (LPT); each list keeps the items' original order."""
    order = {id(item): position for position, item in enumerate(items)}
    loads = [0.0] * count
    shares: list[list[WorkItem]] = [[] for _ in range(count)]
    for item in sorted(items, key=lambda it: (-it.cost, order[id(it)])):  # stable: ties in file order
        target = min(range(count), key=lambda index: (loads[index], index))
        shares[target].append(item)
        loads[target] += item.cost
    return [sorted(share, key=lambda it: order[id(it)]) for share in shares]


def my_share(items: Sequence[WorkItem], group: ProcessGroup) -> list[WorkItem]:
    """The items this process bakes."""
    return split_by_cost(items, group.count)[group.index]


def describe_failure(prompt_id: str, group: ProcessGroup, error: BaseException) -> str:
    """One line naming the prompt, the process and the cause."""
    where = f" on {group.label()}" if group.count > 1 else ""
    cause = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return f"{prompt_id} failed{where}: {cause}"

