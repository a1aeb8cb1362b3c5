"""Bake stage: run every experiment of a prompt set once and store assets plus one manifest per prompt.

A prompt whose cache key (spec, model fingerprint, generator version) matches its manifest, with the manifest
and every asset intact (their content hashes), is skipped. ``preflight`` runs every check that needs the files
the prompt file names or the model but not its weights in memory (images, folders, sizes, token limits,
scheduler names: generator/bake/preflight.py; the weights' format and headers, device) and that the output
folder can be written, so a mistake is one line before any work starts.

One bake per output folder at a time (generator/bake/lock.py). A bake may run as several processes
(generator/bake/shard.py): process 0 takes the lock, removes what a killed bake left and plans the work
(generator/bake/plan.py); every process bakes its share of the prompts and chapters, balanced by expected cost,
into the same content-addressed store (identical bytes under identical names, whoever writes them); after all
have finished, process 0 merges ``index.json``. A prompt that fails is named with its process; the others go on,
what they finished stays, and the same command again bakes only what is missing.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal

from generator.bake.chapters.context import chapter_path
from generator.bake.chapters.runner import bake_chapters
from generator.bake.lock import BakeLock
from generator.bake.manifest import build_manifest, merge_index, versions
from generator.bake.plan import Plan, plan_bake, prompt_cache_key, prompt_manifest_path
from generator.bake.preflight import Preflight, preflight
from generator.bake.shard import ProcessGroup, WorkItem, describe_failure, my_share
from generator.bake.shard_progress import ProgressBoard
from generator.bake.store import AssetStore, write_json
from generator.errors import UserError
from generator.evaluate.verdicts import judged
from generator.files import WriteError
from generator.models.memory import MemoryOptions
from generator.progress import ProgressCallback, no_progress, progress_counter
from generator.spec.prompt_set import PromptSet, PromptSpec

__all__ = ["BakeOutcome", "ShardStopped", "bake", "bake_prompt", "prompt_cache_key"]
WAIT_POLL_S = 0.2


@dataclass(frozen=True)
class BakeOutcome:
    """What happened to one prompt."""

    prompt_id: str
    status: Literal["baked", "cached"]
    manifest: Path


class ShardStopped(UserError):
    """Raised in the other processes when process 0 refused the bake (it alone prints the reason)."""


def bake(
    prompt_set: PromptSet,
    out_dir: Path,
    *,
    device: str = "auto",
    dtype: str = "auto",
    force: bool = False,
    progress: ProgressCallback = no_progress,
    on_event: Callable[[str], None] = lambda message: None,
    adapter: object | None = None,
    allow_pickle: bool = False,
    checked: Preflight | None = None,
    group: ProcessGroup | None = None,
    on_whole: ProgressCallback = no_progress,
    memory: MemoryOptions = MemoryOptions(),
) -> list[BakeOutcome]:
    """Bake every prompt of the set into ``out_dir`` (validated against the model before it loads).

    ``adapter`` reuses an already loaded model (its id must be the set's model); ``checked`` is the result of
    ``preflight`` when the caller ran it already; ``allow_pickle`` lets a model folder load pickled weights.
    ``group`` is this process's place in a sharded bake (default: alone); ``on_whole`` gets the work items
    done over all processes (in process 0). ``memory``: diffusers' CPU offload, VAE slicing or tiling for the model
    this loads (not applied to a given ``adapter``). Returns the outcome of every prompt (in process 0: of all
    processes; elsewhere: its own share).
    """
    group = group or ProcessGroup()
    checked = checked or preflight(prompt_set, device=device, dtype=dtype, allow_pickle=allow_pickle, memory=memory)
    fingerprint = checked.limits.fingerprint
    store = AssetStore(out_dir)
    lock = BakeLock(out_dir)
    try:
        plan = _start(prompt_set, out_dir, store, lock, fingerprint, force, group, on_event)

        def get_adapter() -> object:  # loaded on first use: a fully cached bake never loads it
            nonlocal adapter
            if adapter is None:
                from generator.models.registry import load_model

                options = "".join(", " + name.lstrip("-") for name in memory.names())
                on_event(f"loading {prompt_set.model} ({checked.weights_format} weights{options})")
                where = group.device if group.device and device in ("auto", "cuda") else device
                adapter = load_model(prompt_set.model, device=where, dtype=dtype, allow_pickle=allow_pickle,
                                     memory=memory)
            return adapter

        share = my_share(plan.work, group)
        board = ProgressBoard(lock.folder, group.index, group.count) if group.count > 1 else None
        whole = _WholeReporter(board, on_whole, len(plan.work)) if group.is_main else None
        worker = _ShareBaker(prompt_set, out_dir, store, fingerprint, get_adapter, force, group, progress,
                             on_event, board, whole)
        outcomes, failures = worker.run(share, plan)
        if whole is not None and board is not None:
            whole.wait_for_all()
        group.barrier()
        failures = group.gather(failures)
        if group.count > 1:
            outcomes = group.gather(outcomes)
        group.leave()  # the last exchange: every process is here
        if group.is_main:
            if failures:
                raise UserError(_failure_line(failures))
            write_json(out_dir / "index.json", merge_index(out_dir, prompt_set))
            cached = [BakeOutcome(i, "cached", prompt_manifest_path(out_dir, i)) for i in plan.cached_prompts]
            order = {p.id: n for n, p in enumerate(prompt_set.prompts)}
            outcomes = sorted([*outcomes, *cached], key=lambda o: order[o.prompt_id])
        return outcomes
    finally:
        lock.release()


def _start(prompt_set: PromptSet, out_dir: Path, store: AssetStore, lock: BakeLock, fingerprint: str, force: bool,
           group: ProcessGroup, on_event: Callable[[str], None]) -> Plan:
    """Process 0: lock, clean up and plan, then share the plan (or the refusal) with every process."""
    shared: Plan | str | None = None
    refusal: UserError | None = None
    if group.is_main:
        try:
            store.check_writable()
            note = lock.acquire()
            if note:
                on_event(note)
            removed = store.clean_temporaries()
            if removed:
                on_event(f"removed {removed} temporary file(s) left by an interrupted bake")
            shared = plan_bake(prompt_set, out_dir, fingerprint, force=force)
        except UserError as error:
            refusal, shared = error, str(error)
    shared = group.broadcast(shared)
    if refusal is not None:
        raise refusal
    if isinstance(shared, str):
        raise ShardStopped(shared)
    if group.is_main:
        for prompt_id in shared.cached_prompts:
            on_event(f"{prompt_id}: unchanged, cached (use --force to redo)")
        for section in shared.cached_chapters:
            name = chapter_path(out_dir, section, prompt_set).stem
            on_event(f"{section} {name}: unchanged, cached (use --force to redo)")
    return shared


class _WholeReporter:
    """Process 0's view of the whole bake: its own count alone, or the sum of every process's board line."""

    def __init__(self, board: ProgressBoard | None, on_whole: ProgressCallback, total: int):
        self.board, self.on_whole, self.total = board, on_whole, total
        self.read_at = 0.0

    def update(self, own_done: float) -> None:
        """Report the whole now (throttled when it has to read the board)."""
        if self.board is None:
            self.on_whole(int(own_done), self.total, "all")
            return
        now = time.monotonic()
        if now - self.read_at >= WAIT_POLL_S:
            self.read_at = now
            whole = self.board.whole()
            self.on_whole(whole.done, self.total, f"all {whole.processes} processes")

    def wait_for_all(self) -> None:
        """Keep the whole moving while the other processes finish (they write 'finished' on the board)."""
        while True:
            whole = self.board.whole()
            self.on_whole(whole.done, self.total, f"all {whole.processes} processes")
            if whole.finished >= whole.processes:
                return
            time.sleep(WAIT_POLL_S)


class _ShareBaker:
    """Bakes one process's share: prompts and chapters, progress to the board, failures collected."""

    def __init__(self, prompt_set: PromptSet, out_dir: Path, store: AssetStore, fingerprint: str,
                 get_adapter: Callable[[], object], force: bool, group: ProcessGroup, progress: ProgressCallback,
                 on_event: Callable[[str], None], board: ProgressBoard | None, whole: _WholeReporter | None):
        self.prompt_set, self.out_dir, self.store, self.fingerprint = prompt_set, out_dir, store, fingerprint
        self.get_adapter, self.force, self.group = get_adapter, force, group
        self.progress, self.on_event, self.board, self.whole = progress, on_event, board, whole
        self.done, self.total = 0, 0

    def run(self, share: list[WorkItem], plan: Plan) -> tuple[list[BakeOutcome], list[str]]:
        """Bake every item of ``share``; returns (outcomes, one line per failed item)."""
        prompts = {p.id: p for p in self.prompt_set.prompts}
        outcomes: list[BakeOutcome] = []
        failures: list[str] = []
        self.total = len(share)
        self._report(0.0)
        if self.group.is_main and plan.gone_chapters:
            self._chapters(plan.gone_chapters)
        for item in share:
            try:
                if item.kind == "prompt":
                    outcomes.append(self._prompt(prompts[item.name], plan.reasons.get(item.name, "")))
                else:
                    self._chapters([item.name])
            except WriteError:
                raise  # a full or read-only disk stops every prompt alike: one line, now
            except (UserError, MemoryError) as error:
                failures.append(describe_failure(item.name, self.group, error))
                self.on_event(f"{item.name}: failed: {failures[-1]}")
            except Exception as error:
                if not _is_out_of_memory(error):
                    error.add_note(f"while baking {item.name}" + (f" on {self.group.label()}" if self.group.count > 1 else ""))
                    raise
                failures.append(describe_failure(item.name, self.group, error))
                self.on_event(f"{item.name}: failed: {failures[-1]}")
            self.done += 1
            self._report(float(self.done))
        if self.board is not None:
            self.board.report(self.done, self.total, finished=True)
        return outcomes, failures

    def _report(self, done: float) -> None:
        if self.board is not None:
            self.board.report(done, self.total)
        if self.whole is not None:
            self.whole.update(done)

    def _step_progress(self, completed: int, total: int, label: str = "") -> None:
        self.progress(completed, total, label)
        self._report(self.done + completed / max(total, 1))

    def _prompt(self, prompt: PromptSpec, reason: str) -> BakeOutcome:
        if reason.startswith("damaged"):
            self.on_event(f"{prompt.id}: {reason}; baking it again")
        path = prompt_manifest_path(self.out_dir, prompt.id)
        key = prompt_cache_key(prompt, self.prompt_set.model, self.fingerprint)
        manifest = bake_prompt(self.get_adapter(), prompt, self.store, key, self._step_progress)
        write_json(path, manifest)
        count = f" ({self.done + 1} of {self.total})" if self.group.count > 1 else ""
        self.on_event(f"{prompt.id}: baked{count}")
        return BakeOutcome(prompt.id, "baked", path)

    def _chapters(self, sections: list[str] | tuple[str, ...]) -> None:
        bake_chapters(self.prompt_set, self.out_dir, self.store, self.fingerprint, self.get_adapter,
                      force=self.force, progress=self._step_progress, on_event=self.on_event, sections=sections)


def _is_out_of_memory(error: BaseException) -> bool:
    """torch's OutOfMemoryError (CUDA, MPS) without importing torch here."""
    return type(error).__name__ == "OutOfMemoryError" or "out of memory" in str(error).lower()[:200]


def _failure_line(failures: list[str]) -> str:
    """One line for every prompt or chapter that failed, saying that the rest is kept."""
    count = f"{len(failures)} part(s) failed" if len(failures) > 1 else "1 part failed"
    return (f"{count}: {'; '.join(failures)}; everything else is baked and kept: "
            "run the same command again to bake only what is missing")


def bake_prompt(adapter: object, prompt: PromptSpec, store: AssetStore, key: str, progress: ProgressCallback) -> dict:
    """Run the experiments of one prompt and return its manifest (assets already stored)."""
    from generator.bake.prompt.registry import load_sections
    from generator.bake.prompt.trajectory import bake_trajectory
    from generator.experiments.prompt.trajectory import TrajectoryRequest, run_trajectories

    prompt = prompt.with_model_defaults(adapter)
    settings = prompt.settings
    width, height = settings.width or adapter.default_width, settings.height or adapter.default_height
    adapter.check_size(width, height)
    request = TrajectoryRequest(
        prompts=(prompt.text,),
        steps=settings.steps,
        guidance=settings.guidance,
        seed=settings.seed,
        width=width,
        height=height,
        scheduler=settings.scheduler,
    )
    step_done = progress_counter(progress, request.steps, prompt.id)
    extra_sections = [s for s in load_sections() if s.applies(adapter, prompt)]
    with ExitStack() as stack:
        finishers = [stack.enter_context(section.capture(adapter, prompt, request)) for section in extra_sections]
        (trajectory,) = run_trajectories(adapter, request, on_step=lambda step: step_done(), preview=settings.preview_size)
    sections = bake_trajectory(trajectory, store, settings.preview_size)
    for finish in finishers:
        sections.update(finish(trajectory, store))
    sections["final"] = judged(sections["final"], adapter, prompt.text, trajectory.final_image, prompt.expect)
    return build_manifest(adapter, prompt, request, key, sections, versions())
