"""Where a student's kernel runs.

A sandbox turns a ``Place`` (the submission's working folder, the grader's private
folder for sockets, the read-only data view, the limits) into a started-but-unconnected
kernel manager. Two backends share this interface:

- ``LocalSandbox`` runs the kernel as a child process, behind ``autograder.sandboxes.jail``:
  resource limits, its own network namespace, the grader's folders covered, and, when
  the grader runs as root, an unprivileged user of its own.
- ``DockerSandbox`` (``autograder.sandboxes.docker_sandbox``) runs it in a container per kernel.

Either way the kernel talks to the grader over IPC sockets in the private folder, and
every limit is enforced from outside the kernel.
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import math
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from jupyter_client.manager import AsyncKernelManager

from ..errors import GraderError, UsageError
from . import bwrap
from .cgroups import Group
from .cgroups import remove_stale as remove_stale_groups
from .resources import Resources, has_nvidia_gpu
from .scratch import alive, make_temp, remove_stale

#: Environment the kernel gets; nothing else of the grader's environment is passed on.
#: The allocator: under glibc's default one, a loop that makes a fresh 1 MB tensor a step
#: and keeps a small result of each (``ys.append(a @ x[:, None])``, 10,000 times) grows the
#: heap by about 1 MB a step, past the memory limit, where Colab (which preloads tcmalloc)
#: needs 0.5 GB. Kernels preload tcmalloc where the system has it (``TCMALLOC``); elsewhere
#: glibc's mmap threshold is fixed (``MALLOC_MMAP_THRESHOLD_``), which needs as little
#: memory but makes large tensors slower to allocate (``bench/allocator.py`` has figures).
KERNEL_ENV = {
    "PYTHONUNBUFFERED": "1",
    "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    "MPLBACKEND": "module://matplotlib_inline.backend_inline",
    "MALLOC_MMAP_THRESHOLD_": "65536",
}
#: Where Debian and its relatives keep tcmalloc (package ``libtcmalloc-minimal4``).
TCMALLOC = tuple(f"/usr/lib/{arch}-linux-gnu/libtcmalloc_minimal.so.4" for arch in ("x86_64", "aarch64")) + (
    "/usr/lib64/libtcmalloc_minimal.so.4", "/usr/lib/libtcmalloc_minimal.so.4")
#: The thread counts of the numeric libraries, set from the cores a kernel is granted.
_THREADS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
_PASSED_ON = ("PATH", "LANG", "LC_ALL", "TZ", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "CUDA_HOME", "LD_LIBRARY_PATH")
#: The unprivileged user a root grader runs students' code as (no account needs to exist).
DEFAULT_UID = 61000
MB = 1024 * 1024


@dataclass
class Place:
    """Where one kernel runs and what it may reach."""

    workdir: Path  # the submission's copy, writable
    cwd: Path  # the notebook's folder, inside workdir
    private: Path  # the grader's folder for this kernel's sockets and connection file
    readonly: list[Path] = field(default_factory=list)  # folders the kernel reads (the data view)
    hidden: list[Path] = field(default_factory=list)  # grader folders the kernel must not read
    resources: Resources = Resources()

    @property
    def connection_file(self) -> Path:
        return self.private / "kernel.json"

    @property
    def enforced_file(self) -> Path:
        return self.private / "sandbox.json"

    @property
    def log_file(self) -> Path:
        return self.private / "kernel.log"

    def log_tail(self, lines: int = 5) -> str:
        """The last lines the kernel process wrote outside the notebook (start-up failures)."""
        try:
            text = self.log_file.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])


class Sandbox(Protocol):
    name: str

    def check(self) -> None:
        """Raise ``GraderError``, saying why, when this sandbox cannot run kernels here."""

    def prepare(self, workdir: Path, readonly: list[Path]) -> None:
        """Make a staged submission usable by the kernel's user."""

    def kernel_manager(self, place: Place) -> AsyncKernelManager:
        """A kernel manager that will start the kernel at ``place``."""

    def kernel_env(self, place: Place) -> dict[str, str]:
        """The environment the kernel at ``place`` starts with."""

    def enforced(self, place: Place) -> dict[str, Any]:
        """What the sandbox enforced for the kernel at ``place`` (after it started)."""

    def explain(self, place: Place) -> str:
        """Why the kernel at ``place`` ended, when the sandbox knows (out of memory); else ''."""

    def release(self) -> None:
        """After a submission: end whatever its code left running."""

    def for_slot(self, slot: int) -> Sandbox:
        """A fresh, unchecked sandbox of the same kind for parallel worker ``slot``, kept
        apart from the other workers'; it is sent to the worker process."""


class _OneSpec(KernelSpecManager):
    """A spec manager that knows exactly one kernel: the one the sandbox defines."""

    def __init__(self, spec: KernelSpec, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._spec = spec

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        return self._spec


def manager_for(spec: KernelSpec, place: Place) -> AsyncKernelManager:
    """A kernel manager on IPC sockets inside ``place.private``."""
    manager = AsyncKernelManager(
        kernel_name="autograder",
        transport="ipc",
        ip=str(place.private / "kernel"),
        connection_file=str(place.connection_file),
    )
    manager.kernel_spec_manager = _OneSpec(spec)
    return manager


def tcmalloc() -> str | None:
    """This system's tcmalloc, if it has one."""
    return next((path for path in TCMALLOC if os.path.isfile(path)), None)


def kernel_env(home: str, resources: Resources, base: dict[str, str] | None = None) -> dict[str, str]:
    """The kernel's environment: a few of the grader's variables, the kernel's own, HOME. A
    kernel that runs on this system (``base`` None: not in an image of its own) preloads
    the system's tcmalloc where there is one."""
    source = os.environ if base is None else base
    env = {key: source[key] for key in _PASSED_ON if key in source}
    env.update(KERNEL_ENV)
    preload = tcmalloc() if base is None else None
    if preload:
        env["LD_PRELOAD"] = preload
    if resources.cpus is not None:  # as many threads as granted cores, not as the machine has
        granted = max(1, math.ceil(resources.cpus))
        for key in _THREADS:
            env[key] = str(min(granted, int(env[key]))) if env.get(key, "").isdigit() else str(granted)
    env["HOME"] = home
    indices = resources.gpu_indices()
    if indices is not None:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(indices)
    return env


def hand_over(workdir: Path, readonly: list[Path], uid: int | None) -> None:
    """Give the staged submission to the kernel's user; let it read the read-only folders."""
    if uid is None:
        return
    for folder in readonly:  # public by construction (the data view): readable by everyone
        for path in [folder, *folder.rglob("*")]:
            if not path.is_symlink():
                path.chmod(0o755 if path.is_dir() else 0o644)
    for path in [workdir, *workdir.rglob("*")]:
        os.lchown(path, uid, uid)


def _is_within(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def uid_locks() -> Path:
    """The folder of the sandbox users' claims: the same for every grader on this machine,
    whatever its ``TMPDIR`` (graders that looked in different folders would share a user,
    and one's ``release`` would kill the other's kernels)."""
    for folder in (Path("/run/lock"), Path("/tmp")):
        if folder.is_dir() and os.access(folder, os.W_OK):
            return folder
    raise GraderError("neither /run/lock nor /tmp is writable: the sandbox users cannot be claimed")


def claim_uid(start: int) -> tuple[int, IO[str]]:
    """A sandbox user no other grader on this machine uses (``release`` kills every process
    of its user, and Docker kernels run as the same uids): ``start`` if free, else the
    next. The claim is a lock held until the returned handle is closed or this process
    ends, however it ends."""
    folder = uid_locks()
    for candidate in range(start, start + 256):
        handle = open(folder / f"autograder-sandbox-uid-{candidate}.lock", "a")  # noqa: SIM115
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        return candidate, handle
    raise GraderError(f"every sandbox user from uid {start} to {start + 255} is in use by other graders")


class LocalSandbox:
    """The kernel runs as a subprocess of the grader, with the grader's Python, behind
    ``autograder.sandboxes.jail``: in a root of its own built by bubblewrap (``autograder.sandboxes.bwrap``)
    where the host allows namespaces; where it refuses them, on the host with the
    grader's folders made unreadable to the sandbox user (root only) and the network cut
    if any means allows. ``grade.json`` records which walls stood."""

    name = "local"

    def __init__(self, python: str | None = None, *, uid: int | None = None, isolate: bool = True,
                 mode: str | None = None) -> None:
        self.python = python or sys.executable
        self.isolate = isolate
        root = os.geteuid() == 0
        if uid is None and root and isolate:
            uid = int(os.environ.get("AUTOGRADER_SANDBOX_UID", DEFAULT_UID))
        self.uid = uid if root and uid != 0 else None
        self.mode = mode or os.environ.get("AUTOGRADER_JAIL", "auto")  # auto | bwrap | permissions
        if self.mode not in JAIL_MODES:
            raise UsageError(f"AUTOGRADER_JAIL={self.mode!r}: expected one of {', '.join(JAIL_MODES)}")
        self.why_not = ""  # why bubblewrap is not used, when it is not
        self._checked = False
        self._claim: IO[str] | None = None
        self._groups: dict[str, Group | None] = {}
        self._locked: set[Path] = set()

    @property
    def walls(self) -> str:
        """What isolates the kernels: bwrap, permissions, or none (not isolated)."""
        if not self.isolate:
            return "none"
        return "permissions" if self.mode == "permissions" else "bwrap"

    # -- the jail's configuration

    def _group(self, place: Place) -> Group | None:
        key = str(place.private)
        if key not in self._groups:
            res = place.resources
            self._groups[key] = Group.make(f"k{os.getpid()}-{place.private.name}", memory_mb=res.memory_mb,
                                           processes=res.processes, cpus=res.cpus)
        return self._groups[key]

    def _config(self, place: Place) -> dict[str, Any]:
        res = place.resources
        cuda = res.gpu_indices() != [] and has_nvidia_gpu()  # CUDA reserves far more address space than it uses
        group = self._group(place)
        covered = group.limits if group else {}
        enforced: dict[str, Any] = {"walls": self.walls, "not_enforced": []}
        if self.why_not:
            enforced["not_enforced"].append(self.why_not)
        if group is not None:
            enforced["memory"] = f"{res.memory_mb} MB resident, no swap ({group.describe()})"
            if "processes" in covered:
                enforced["processes"] = f"{res.processes} ({group.describe()})"
        elif res.memory_mb and not cuda:
            enforced["memory"] = f"{res.memory_mb} MB of address space (no control groups here)"
        else:
            enforced["not_enforced"].append("memory: no control groups here, and a CUDA kernel cannot be limited "
                                            "by address space")
        limits = {
            "address_space": res.memory_mb * MB if res.memory_mb and not cuda and group is None else None,
            "cpu_seconds": res.cpu_seconds,
            "processes": res.processes if "processes" not in covered else None,
            "open_files": 4096,
        }
        config: dict[str, Any] = {
            "uid": self.uid,
            "cgroup_procs": group.procs_files if group else [],
            "own": [str(place.private), str(place.connection_file)],
            "report": str(place.enforced_file),
            "log": str(place.log_file),
        }
        if self.walls == "bwrap":
            enforced.update(network="cut", filesystem="a root of its own: system folders, the interpreter, "
                            "the submission and the data view", tmp="private", processes_seen="its own only",
                            disk=f"{res.scratch_mb} MB in all (a tmpfs holding the submission's copy and /tmp; "
                            f"/var/tmp {bwrap.VAR_TMP_MB} MB more)")
            config.update(ignore_sigint=True, reveal=bwrap.interpreter_folders(self.python) if self.uid else [])
        else:
            limits["file_size"] = res.scratch_mb * MB if res.scratch_mb else None
            hidden = "the grader's folders unreadable to the sandbox user" if self.uid else "nothing hidden"
            enforced.update(filesystem=f"the host's, {hidden}", tmp="the host's, cleaned after each submission",
                            disk=f"{res.scratch_mb} MB per file")
            config["cut_network"] = True
        config["limits"] = limits
        config["enforced"] = enforced
        return config

    def for_slot(self, slot: int) -> LocalSandbox:
        """The sandbox of parallel worker ``slot``: a user of its own, since ``release`` kills
        every process of its user."""
        uid = self.uid + slot if self.uid is not None else None
        return LocalSandbox(self.python, uid=uid, isolate=self.isolate, mode=self.mode)

    def _kernel_argv(self, place: Place) -> list[str]:
        kernel = [self.python, "-m", "ipykernel_launcher", "-f", str(place.connection_file)]
        if self.walls != "bwrap":
            return kernel
        res = place.resources
        return bwrap.command(
            bwrap=self._bwrap, python=self.python, workdir=place.workdir, cwd=place.cwd, private=place.private,
            readonly=place.readonly, scratch_mb=res.scratch_mb or 2048, shm_mb=max(64, (res.memory_mb or 8192) // 2),
            gpus=res.gpu_indices() != [] and has_nvidia_gpu(), kernel=kernel,
        )

    def kernel_spec(self, place: Place | None = None) -> KernelSpec:
        kernel = [self.python, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
        if place is not None and self.isolate:
            config = place.private / "jail.json"
            settings = {**self._config(place), "start_delay_s": _simulated_start_delay()}
            config.write_text(json.dumps(settings), encoding="utf-8")
            kernel = [self.python, "-m", "autograder.sandboxes.jail", str(config), "--", *self._kernel_argv(place)]
        return KernelSpec(argv=kernel, display_name="autograder (local)", language="python", resource_dir="")

    # -- the Sandbox interface

    def _claim_uid(self) -> None:
        if self.uid is not None and self._claim is None:
            self.uid, self._claim = claim_uid(self.uid)

    @property
    def _bwrap(self) -> str:
        return bwrap.find() or "bwrap"

    def _probe(self) -> subprocess.CompletedProcess[str]:
        """Start the sandbox once, as a kernel would be, with Python importing the kernel's packages."""
        folder = make_temp("probe-")
        folder.chmod(0o711)
        place: Place | None = None
        try:
            workdir = folder / "work"
            workdir.mkdir()
            place = Place(workdir=workdir, cwd=workdir, private=folder / "private",
                          resources=Resources(memory_mb=None, processes=None, gpus="none"))
            place.private.mkdir()
            hand_over(workdir, [], self.uid)
            config = self._config(place)
            config.update(report=None, log=None)
            (folder / "jail.json").write_text(json.dumps(config), encoding="utf-8")
            probe = [self.python, "-c", "import ipykernel, numpy"]
            inner = self._kernel_argv(place)
            inner = inner[:inner.index("--") + 1] + ["/bin/sh", "-c", 'exec "$@"', "probe", *probe] \
                if self.walls == "bwrap" else probe
            command = [self.python, "-m", "autograder.sandboxes.jail", str(folder / "jail.json"), "--", *inner]
            return subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=workdir)
        finally:
            if place is not None:
                self._drop_group(place)
            if self.uid is not None:
                reap_children_of(self.uid)
            shutil.rmtree(folder, ignore_errors=True)

    def check(self) -> None:
        """Choose the walls this host allows, and fail early, saying why, when the sandbox
        user cannot run the grader's Python. What a probe found holds for this process's
        later sandboxes of the same Python, user and mode (a batch makes one per submission)."""
        self._claim_uid()
        if self._checked or not self.isolate:
            return
        remove_stale()
        remove_stale_groups(_stale_group)
        key = (self.python, self.uid, self.mode)
        if key in _CHOSEN:
            self.mode, self.why_not = _CHOSEN[key]
            self._checked = True
            return
        self._choose()
        _CHOSEN[key] = (self.mode, self.why_not)

    def _choose(self) -> None:
        if self.mode != "permissions":
            found = bwrap.find()
            result = self._probe() if found else None
            if result is not None and result.returncode == 0:
                self.mode = "bwrap"
                self._checked = True
                return
            detail = _last_line(result.stderr) if result is not None else "bubblewrap (bwrap) is not installed"
            if self.mode == "bwrap":
                raise GraderError(f"AUTOGRADER_JAIL=bwrap, but bubblewrap cannot start a kernel here: {detail}")
            self.why_not = f"namespaces: bubblewrap could not start here ({detail}), so the kernel ran on the host"
            self.mode = "permissions"
        result = self._probe()
        if result.returncode != 0:
            raise GraderError(
                f"the local sandbox runs students' code as uid {self.uid}, which cannot run the grader's Python "
                f"({self.python}): {_last_line(result.stderr)}. Install the grader where other users can read it "
                "(for example a virtual environment under /opt made from a Python outside /root), or set "
                "AUTOGRADER_SANDBOX_UID=0 to run students' code as root (unsafe)."
            )
        self._checked = True

    def prepare(self, workdir: Path, readonly: list[Path]) -> None:
        self.check()
        hand_over(workdir, readonly, self.uid)

    def _lock(self, place: Place) -> None:
        """Without namespaces: make the grader's folders unreadable to the sandbox user."""
        if self.walls != "permissions" or self.uid is None:
            return
        needed = [place.workdir, place.private, *place.readonly, Path(self.python).parent,
                  Path(os.path.realpath(self.python)).parent, Path(sys.prefix), Path(sys.base_prefix)]
        for folder in place.hidden:
            if folder in self._locked or not folder.is_dir() or any(_is_within(n, folder) for n in needed):
                continue
            mode = folder.stat().st_mode
            folder.chmod(mode & ~0o007)
            self._locked.add(folder)

    def explain(self, place: Place) -> str:
        group = self._groups.get(str(place.private))
        if group is not None and group.oom_kills():
            peak = group.peak_bytes()
            held = f", {peak / MB:,.0f} MB at the peak" if peak else ""
            return (f"out of memory: the kernel and what it started used more than the "
                    f"{place.resources.memory_mb} MB memory limit{held}, and were killed")
        return ""

    def kernel_manager(self, place: Place) -> AsyncKernelManager:
        self.check()
        self._lock(place)
        if self.isolate:
            become_subreaper()
        return manager_for(self.kernel_spec(place), place)

    def kernel_env(self, place: Place) -> dict[str, str]:
        home = bwrap.SCRATCH if self.walls == "bwrap" else str(place.cwd)
        return kernel_env(home, place.resources)

    def enforced(self, place: Place) -> dict[str, Any]:
        base: dict[str, Any] = {"backend": self.name}
        try:
            base.update(json.loads(place.enforced_file.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            base["walls"] = "none"
            base["not_enforced"] = ["isolation: the kernel ran as a plain subprocess"]
        return base

    def _drop_group(self, place: Place) -> None:
        group = self._groups.pop(str(place.private), None)
        if group is not None:
            group.remove()

    def release(self) -> None:
        """Kill every process of the sandbox user, and wait until they are gone: a fork
        bomb's leftovers would otherwise count against the next submission's limits. Remove
        the kernels' control groups and, without a root of their own, the user's files in
        the host's shared temporary folders."""
        for key in list(self._groups):
            group = self._groups.pop(key)
            if group is not None:
                group.remove()
        if self.uid is None or self._claim is None:  # a user not claimed may be another grader's
            return
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            living, zombies = _processes_of(self.uid)
            if living:
                subprocess.run([self.python, "-m", "autograder.sandboxes.jail", "--kill-all", str(self.uid)],
                               capture_output=True, timeout=30)
            elif not zombies:  # zombies still count against the user's process limit until reaped
                break
            if not reap_children_of(self.uid, zombies):
                time.sleep(0.05)
        if self.walls == "permissions":
            remove_files_of(self.uid, SHARED_TMP)


#: The host's temporary folders every user may write, cleaned of the sandbox user's files
#: after each submission when kernels share them (no root of their own).
#: The walls each (Python, sandbox user, mode asked for) was found to allow, and why not others.
_CHOSEN: dict[tuple[str, int | None, str], tuple[str, str]] = {}
SHARED_TMP = (Path("/tmp"), Path("/var/tmp"), Path("/dev/shm"))
JAIL_MODES = ("auto", "bwrap", "permissions")


_SUBREAPER_PIDS: set[int] = set()


def become_subreaper() -> None:
    """Make this process the reaper of its orphaned descendants (``PR_SET_CHILD_SUBREAPER``):
    the namespace's own init that bubblewrap leaves behind when a kernel is stopped comes
    back to the grader, which reaps it at once in ``release``, rather than to the host's
    init, which on some hosts reaps only now and then (seconds per submission)."""
    if os.getpid() in _SUBREAPER_PIDS or not sys.platform.startswith("linux"):
        return
    _SUBREAPER_PIDS.add(os.getpid())
    try:
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass  # release then waits for the host's init, as before


def reap_children_of(uid: int, zombies: list[int] | None = None) -> bool:
    """Reap this process's zombie children of user ``uid`` (a kernel stopped mid-start, the
    orphans a subreaper is given); whether any was reaped."""
    reaped = False
    for pid in _processes_of(uid)[1] if zombies is None else zombies:
        try:
            reaped = os.waitpid(pid, os.WNOHANG)[0] == pid or reaped
        except ChildProcessError:
            pass
    return reaped


def remove_files_of(uid: int, folders: tuple[Path, ...]) -> None:
    """Remove what ``uid`` left at the top of ``folders`` (and everything inside it)."""
    for folder in folders:
        try:
            entries = list(folder.iterdir())
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.lstat().st_uid != uid:
                    continue
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink()
            except OSError:
                pass


def _stale_group(name: str) -> bool:
    """Whether a kernel's control group (``k<grader pid>-<kernel>``) belongs to a grader that is gone."""
    pid = name[1:].split("-")[0]
    return name.startswith("k") and pid.isdigit() and not alive(int(pid))


def _last_line(text: str) -> str:
    return (text.strip().splitlines() or ["(no message)"])[-1]


def _simulated_start_delay() -> float:
    """Seconds a kernel's start is held back, for tests of the grader's start timeout:
    ``AUTOGRADER_TEST_SLOW_START=SECONDS:COUNTER_FILE:N`` delays the first N starts."""
    setting = os.environ.get("AUTOGRADER_TEST_SLOW_START", "")
    if not setting:
        return 0.0
    seconds, counter, times = setting.split(":")
    path = Path(counter)
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        done = len(handle.read())
        if done >= int(times):
            return 0.0
        handle.write("x")
    return float(seconds)


def _processes_of(uid: int) -> tuple[list[int], list[int]]:
    """Processes whose real user is ``uid``: living ones, and the zombies this process is
    the parent of (its to reap; another's zombies are their parent's)."""
    living: list[int] = []
    zombies: list[int] = []
    me = str(os.getpid())
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if fields.get("Uid", "").split()[:1] != [str(uid)]:
            continue
        if not fields.get("State", "").strip().startswith("Z"):
            living.append(int(entry.name))
        elif fields.get("PPid", "").strip() == me:
            zombies.append(int(entry.name))
    return living, zombies


def private_dir(prefix: str = "kernel-") -> Path:
    """A fresh folder for the grader's own per-kernel files (sockets, connection file)."""
    return make_temp(prefix)
