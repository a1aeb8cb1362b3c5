"""Bake stage: one bake at a time per output folder (a lock folder holding its owner's pid and host).

Two bakes writing into the same folder would interleave their manifests and index; the second is refused
with one line instead. The lock is a folder (``.bake.lock``, made with ``mkdir``, which is atomic on every
file system, shared ones included) holding ``owner.json``: pid, host and start time of the process that
took it. A lock whose owner process is gone (killed with SIGKILL, the machine rebooted) is stale: it is
removed and taken, so a crash never blocks the folder forever. A sharded bake shares one lock: process 0
takes it, the others work under it, and progress files of every process live in it
(``generator/bake/shard_progress.py``), so nothing of the lock reaches the finished output.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from generator.errors import UserError

LOCK_NAME = ".bake.lock"
OWNER = "owner.json"


class LockedError(UserError):
    """The output folder is being baked by another process (one line, exit 2)."""


@dataclass(frozen=True)
class LockOwner:
    """Who holds a lock: pid and host name of the process, when it took it (Unix seconds)."""

    pid: int
    host: str
    since: float

    def alive(self) -> bool:
        """Whether the owner may still run: a pid on another host is assumed alive (it cannot be checked here)."""
        if self.host != socket.gethostname():
            return True
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # exists, owned by another user
            return True
        return True


def lock_folder(out_dir: Path) -> Path:
    """Where the lock of an output folder lives."""
    return Path(out_dir) / LOCK_NAME


def read_owner(folder: Path) -> LockOwner | None:
    """The owner recorded in a lock folder; None when it is unreadable (a lock being taken or removed)."""
    try:
        data = json.loads((folder / OWNER).read_text(encoding="utf-8"))
        return LockOwner(int(data["pid"]), str(data["host"]), float(data["since"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def refusal(out_dir: Path, owner: LockOwner) -> LockedError:
    """The one line for a folder another bake holds."""
    started = time.strftime("%H:%M:%S", time.localtime(owner.since))
    return LockedError(f"{out_dir} is being baked by process {owner.pid} on {owner.host} (since {started}); "
                       f"wait for it to finish, or remove {lock_folder(out_dir)} if no bake is running")


def check_unlocked(out_dir: Path) -> None:
    """Raise the one-line refusal when a live bake holds ``out_dir`` (writes nothing; for launchers)."""
    owner = read_owner(lock_folder(out_dir))
    if owner is not None and owner.alive():
        raise refusal(out_dir, owner)


class BakeLock:
    """The lock of one output folder; ``acquire`` returns a message when it removed a stale lock, else ''."""

    def __init__(self, out_dir: Path):
        self.out_dir = Path(out_dir)
        self.folder = lock_folder(out_dir)
        self.held = False

    def acquire(self, grace_s: float = 2.0) -> str:
        """Take the lock or raise ``LockedError``; a lock of a dead process is removed first (pid check).

        A lock folder without a readable owner may be one being taken right now: it is given ``grace_s`` to
        get its owner file before it counts as stale.
        """
        note = ""
        deadline = time.monotonic() + grace_s
        while True:
            try:
                self.folder.mkdir(parents=False)
            except FileExistsError:
                owner = read_owner(self.folder)
                if owner is not None and owner.alive():
                    raise refusal(self.out_dir, owner) from None
                if owner is None and time.monotonic() < deadline:
                    time.sleep(0.05)
                    continue
                shutil.rmtree(self.folder, ignore_errors=True)
                who = f"process {owner.pid}" if owner else "an unknown process"
                note = f"removed a stale lock left by {who} that is no longer running"
                continue
            record = {"pid": os.getpid(), "host": socket.gethostname(), "since": round(time.time(), 3)}
            (self.folder / OWNER).write_text(json.dumps(record), encoding="utf-8")
            self.held = True
            return note

    def release(self) -> None:
        """Remove the lock (and the progress files in it) if this process holds it."""
        if self.held:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.held = False

    def __enter__(self) -> BakeLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()
