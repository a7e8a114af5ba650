"""Resource limits for one local kernel from the host's control groups.

A kernel gets a group of its own, made by the grader beside (under) the grader's own
group, and the jail moves itself into it before it becomes the kernel, so the kernel and
everything it starts are counted together: resident memory (page cache and tmpfs pages
included, swap off), processes and CPU time. cgroup v2 is used where the host gives its
controllers; the v1 ``memory``, ``pids`` and ``cpu`` hierarchies otherwise (hosts that
still mount them, such as a Docker engine on cgroupfs). Without either, ``Group.make``
returns ``None`` and the sandbox falls back to an address-space limit.

Only the standard library is used.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
MB = 1024 * 1024
_CPU_PERIOD_US = 100_000


def _own_paths() -> dict[str, str]:
    """This process's group in each hierarchy: ``{"": v2 path, "memory": v1 path, ...}``."""
    paths: dict[str, str] = {}
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return paths
    for line in lines:
        _, controllers, path = line.split(":", 2)
        for name in controllers.split(",") if controllers else [""]:
            paths[name] = path
    return paths


def _writable(folder: Path) -> bool:
    return folder.is_dir() and os.access(folder, os.W_OK)


@dataclass
class Group:
    """One kernel's control group (one folder in v2; one per controller in v1)."""

    version: int
    folders: dict[str, Path]  # controller ("" in v2) -> folder
    limits: dict[str, int] = field(default_factory=dict)

    # -- making one

    @classmethod
    def make(cls, name: str, *, memory_mb: int | None, processes: int | None,
             cpus: float | None) -> Group | None:
        """A new group with these limits, or ``None`` when the host lets this process make none."""
        for maker in (cls._v2, cls._v1):
            group = maker(name)
            if group is None:
                continue
            try:
                group._apply(memory_mb, processes, cpus)
            except OSError:
                group.remove()
                continue
            if "memory" in group.limits:
                return group
            group.remove()
        return None

    @classmethod
    def _v2(cls, name: str) -> Group | None:
        own = _own_paths().get("")
        base = ROOT / own.lstrip("/") if own is not None else None
        if base is None or not (base / "cgroup.controllers").is_file():
            return None
        for parent in (base / "autograder", base.parent / "autograder") if base != ROOT else (ROOT / "autograder",):
            if not _writable(parent.parent):
                continue
            try:
                parent.mkdir(exist_ok=True)
                enable = " ".join(f"+{c}" for c in ("memory", "pids", "cpu")
                                  if c in (parent.parent / "cgroup.controllers").read_text().split())
                (parent.parent / "cgroup.subtree_control").write_text(enable)
                (parent / "cgroup.subtree_control").write_text(enable)
                folder = parent / name
                folder.mkdir()
            except OSError:
                continue
            return cls(2, {"": folder})
        return None

    @classmethod
    def _v1(cls, name: str) -> Group | None:
        own = _own_paths()
        folders: dict[str, Path] = {}
        for controller in ("memory", "pids", "cpu"):
            mount = ROOT / controller
            if controller not in own or not (mount / "cgroup.procs").is_file():
                continue
            parent = mount / own[controller].lstrip("/") / "autograder"
            try:
                parent.mkdir(exist_ok=True)
                (parent / name).mkdir()
            except OSError:
                continue
            folders[controller] = parent / name
        if "memory" in folders:
            return cls(1, folders)
        cls(1, folders).remove()
        return None

    def _write(self, controller: str, name: str, value: str) -> None:
        folder = self.folders.get("" if self.version == 2 else controller)
        if folder is None:
            raise FileNotFoundError(controller)
        (folder / name).write_text(value)

    def _apply(self, memory_mb: int | None, processes: int | None, cpus: float | None) -> None:
        if memory_mb:
            limit = str(memory_mb * MB)
            if self.version == 2:
                self._write("memory", "memory.max", limit)
                self._try("memory", "memory.swap.max", "0")
            else:
                self._write("memory", "memory.limit_in_bytes", limit)
                self._try("memory", "memory.memsw.limit_in_bytes", limit)  # absent when swap accounting is off
                self._try("memory", "memory.swappiness", "0")
            self.limits["memory"] = memory_mb * MB
        if processes and self._try("pids", "pids.max", str(processes)):
            self.limits["processes"] = processes
        if cpus:
            quota = str(int(cpus * _CPU_PERIOD_US))
            done = (self._try("cpu", "cpu.max", f"{quota} {_CPU_PERIOD_US}") if self.version == 2 else
                    self._try("cpu", "cpu.cfs_period_us", str(_CPU_PERIOD_US))
                    and self._try("cpu", "cpu.cfs_quota_us", quota))
            if done:
                self.limits["cpus_millis"] = int(cpus * 1000)

    def _try(self, controller: str, name: str, value: str) -> bool:
        try:
            self._write(controller, name, value)
            return True
        except OSError:
            return False

    # -- using one

    @property
    def procs_files(self) -> list[str]:
        """The files a process writes its pid to, to join the group (every controller)."""
        return [str(folder / "cgroup.procs") for folder in self.folders.values()]

    def describe(self) -> str:
        return f"cgroup v{self.version}"

    def oom_kills(self) -> int:
        """How many times the kernel's group ran out of memory and had a process killed."""
        folder = self.folders.get("" if self.version == 2 else "memory")
        name = "memory.events" if self.version == 2 else "memory.oom_control"
        try:
            text = (folder / name).read_text() if folder else ""
        except OSError:
            return 0
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0

    def peak_bytes(self) -> int | None:
        """The most memory the group held at once, as the kernel counts it (cgroup v2's
        ``memory.peak``, v1's ``memory.max_usage_in_bytes``); None where it is not kept."""
        folder = self.folders.get("" if self.version == 2 else "memory")
        name = "memory.peak" if self.version == 2 else "memory.max_usage_in_bytes"
        try:
            return int((folder / name).read_text().split()[0]) if folder else None
        except (OSError, ValueError, IndexError):
            return None

    def pids(self) -> list[int]:
        found: set[int] = set()
        for folder in self.folders.values():
            try:
                found.update(int(line) for line in (folder / "cgroup.procs").read_text().split())
            except (OSError, ValueError):
                pass
        return sorted(found)

    def remove(self) -> None:
        """Kill whatever still runs in the group, then remove it."""
        deadline = time.monotonic() + 10
        for folder in self.folders.values():
            kill = folder / "cgroup.kill"
            if kill.exists():
                try:
                    kill.write_text("1")
                except OSError:
                    pass
        while (living := self.pids()) and time.monotonic() < deadline:
            for pid in living:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            time.sleep(0.05)
        for folder in self.folders.values():
            for _ in range(50):
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:  # the last processes are still leaving
                    time.sleep(0.05)


def _parents() -> list[Path]:
    """The folders kernel groups are made in, in every hierarchy this process is in."""
    own = _own_paths()
    parents = []
    if "" in own:
        base = ROOT / own[""].lstrip("/")
        parents += [base / "autograder", base.parent / "autograder"]
    parents += [ROOT / c / own[c].lstrip("/") / "autograder" for c in ("memory", "pids", "cpu") if c in own]
    return [parent for parent in parents if parent.is_dir()]


def remove_stale(is_stale: Callable[[str], bool]) -> None:
    """Remove the kernel groups whose name ``is_stale`` says a killed grader left behind."""
    for parent in _parents():
        for folder in parent.iterdir():
            if folder.is_dir() and is_stale(folder.name):
                Group(0, {"": folder}).remove()
