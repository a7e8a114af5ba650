"""Where a student's kernel runs.

A sandbox turns a ``Place`` (the submission's working folder, the grader's private
folder for sockets, the read-only data view, the limits) into a started-but-unconnected
kernel manager. Two backends share this interface:

- ``LocalSandbox`` runs the kernel as a child process, behind ``autograder.jail``:
  resource limits, its own network namespace, the grader's folders covered, and, when
  the grader runs as root, an unprivileged user of its own.
- ``DockerSandbox`` (``autograder.docker_sandbox``) runs it in a container per kernel.

Either way the kernel talks to the grader over IPC sockets in the private folder, and
every limit is enforced from outside the kernel.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from jupyter_client.manager import AsyncKernelManager

from .errors import GraderError, UsageError

#: Environment the kernel gets; nothing else of the grader's environment is passed on.
KERNEL_ENV = {
    "PYTHONUNBUFFERED": "1",
    "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    "MPLBACKEND": "module://matplotlib_inline.backend_inline",
}
_PASSED_ON = ("PATH", "LANG", "LC_ALL", "TZ", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "CUDA_HOME", "LD_LIBRARY_PATH")
#: The unprivileged user a root grader runs students' code as (no account needs to exist).
DEFAULT_UID = 61000
MB = 1024 * 1024


@dataclass(frozen=True)
class Resources:
    """What one kernel may use. ``None`` leaves a resource unlimited."""

    memory_mb: int | None = 8192
    cpus: float | None = None
    processes: int | None = 512
    file_size_mb: int | None = 2048  # largest file; in Docker, the whole writable scratch area
    gpus: str = "auto"  # auto (all when the machine has any) | all | none | comma-separated indices
    cpu_seconds: float | None = None

    def gpu_indices(self, machine_has_gpu: bool | None = None) -> list[str] | None:
        """``None`` for all GPUs, else the indices (empty for none)."""
        value = self.gpus.strip().lower()
        if value == "auto":
            value = "all" if (has_nvidia_gpu() if machine_has_gpu is None else machine_has_gpu) else "none"
        if value == "all":
            return None
        if value in ("", "none"):
            return []
        indices = [part.strip() for part in value.split(",")]
        if not all(part.isdigit() for part in indices):
            raise UsageError(f"--gpus {self.gpus!r}: expected all, none, or GPU indices such as 0 or 0,1")
        return indices


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


def kernel_env(home: str, resources: Resources, base: dict[str, str] | None = None) -> dict[str, str]:
    """The kernel's environment: a few of the grader's variables, the kernel's own, HOME."""
    source = os.environ if base is None else base
    env = {key: source[key] for key in _PASSED_ON if key in source}
    env.update(KERNEL_ENV)
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


def has_nvidia_gpu() -> bool:
    """Whether this machine shows an NVIDIA GPU to its processes."""
    return Path("/dev/nvidiactl").exists()


def gpu_count() -> int:
    """How many NVIDIA GPUs this machine has (device nodes /dev/nvidia0, 1, ...)."""
    if not has_nvidia_gpu():
        return 0
    return len([p for p in Path("/dev").glob("nvidia[0-9]*") if p.name[len("nvidia"):].isdigit()])


def _is_within(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def claim_uid(start: int) -> tuple[int, IO[str]]:
    """A sandbox user no other grader on this machine uses (``release`` kills every process
    of its user, and Docker kernels run as the same uids): ``start`` if free, else the
    next. The claim is a lock held until the returned handle is closed or this process
    ends, however it ends."""
    for candidate in range(start, start + 256):
        handle = open(Path(tempfile.gettempdir()) / f"autograder-sandbox-uid-{candidate}.lock", "a")  # noqa: SIM115
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        return candidate, handle
    raise GraderError(f"every sandbox user from uid {start} to {start + 255} is in use by other graders")


class LocalSandbox:
    """The kernel runs as a subprocess of the grader, with the grader's Python, behind
    ``autograder.jail``."""

    name = "local"

    def __init__(self, python: str | None = None, *, uid: int | None = None, isolate: bool = True) -> None:
        self.python = python or sys.executable
        self.isolate = isolate
        root = os.geteuid() == 0
        if uid is None and root and isolate:
            uid = int(os.environ.get("AUTOGRADER_SANDBOX_UID", DEFAULT_UID))
        self.uid = uid if root and uid != 0 else None
        self._checked = False
        self._claim: IO[str] | None = None

    # -- the jail's configuration

    def _config(self, place: Place) -> dict[str, Any]:
        if not self.isolate:
            return {}
        python = Path(self.python)
        needed = [place.workdir, place.private, *place.readonly, python.parent, Path(os.path.realpath(python)).parent,
                  Path(sys.prefix), Path(sys.base_prefix)]
        hide = [
            str(path) for path in place.hidden
            if path.is_dir() and not any(_is_within(need, path) for need in needed)
        ]
        res = place.resources
        cuda = res.gpu_indices() != [] and has_nvidia_gpu()  # CUDA reserves far more address space than it uses
        limits = {
            "address_space": res.memory_mb * MB if res.memory_mb and not cuda else None,
            "cpu_seconds": res.cpu_seconds,
            "processes": res.processes,
            "file_size": res.file_size_mb * MB if res.file_size_mb else None,
            "open_files": 4096,
        }
        return {
            "hide": hide,
            "no_network": True,
            "limits": limits,
            "uid": self.uid,
            "own": [str(place.private), str(place.connection_file)],
            "report": str(place.enforced_file),
            "log": str(place.log_file),
        }

    def for_slot(self, slot: int) -> LocalSandbox:
        """The sandbox of parallel worker ``slot``: a user of its own, since ``release`` kills
        every process of its user."""
        uid = self.uid + slot if self.uid is not None else None
        return LocalSandbox(self.python, uid=uid, isolate=self.isolate)

    def kernel_spec(self, place: Place | None = None) -> KernelSpec:
        kernel = [self.python, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
        if place is not None and self.isolate:
            config = place.private / "jail.json"
            config.write_text(json.dumps(self._config(place)), encoding="utf-8")
            kernel = [self.python, "-m", "autograder.jail", str(config), "--", *kernel]
        return KernelSpec(argv=kernel, display_name="autograder (local)", language="python", resource_dir="")

    # -- the Sandbox interface

    def _claim_uid(self) -> None:
        if self.uid is not None and self._claim is None:
            self.uid, self._claim = claim_uid(self.uid)

    def check(self) -> None:
        """Fail early, and say why, when the sandbox user cannot run the grader's Python."""
        self._claim_uid()
        if self._checked or self.uid is None:
            return
        probe_dir = Path(tempfile.mkdtemp(prefix="autograder-probe-"))
        try:
            os.chown(probe_dir, self.uid, self.uid)
            config = probe_dir / "jail.json"
            config.write_text(json.dumps({"uid": self.uid}), encoding="utf-8")
            command = [self.python, "-m", "autograder.jail", str(config), "--",
                       self.python, "-c", "import ipykernel, numpy"]
            result = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=probe_dir)
        finally:
            shutil.rmtree(probe_dir, ignore_errors=True)
        if result.returncode != 0:
            detail = (result.stderr.strip().splitlines() or ["(no message)"])[-1]
            raise GraderError(
                f"the local sandbox runs students' code as uid {self.uid}, which cannot run the grader's Python "
                f"({self.python}): {detail}. Install the grader where other users can read it (for example a "
                "virtual environment under /opt made from a Python outside /root), or set AUTOGRADER_SANDBOX_UID=0 "
                "to run students' code as root (unsafe)."
            )
        self._checked = True

    def prepare(self, workdir: Path, readonly: list[Path]) -> None:
        self.check()
        hand_over(workdir, readonly, self.uid)

    def explain(self, place: Place) -> str:
        return ""

    def kernel_manager(self, place: Place) -> AsyncKernelManager:
        return manager_for(self.kernel_spec(place), place)

    def kernel_env(self, place: Place) -> dict[str, str]:
        return kernel_env(str(place.cwd), place.resources)

    def enforced(self, place: Place) -> dict[str, Any]:
        base: dict[str, Any] = {"backend": self.name}
        try:
            base.update(json.loads(place.enforced_file.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            base["why_not"] = "no isolation (the kernel ran as a plain subprocess)"
        return base

    def release(self) -> None:
        """Kill every process of the sandbox user, and wait until they are gone: a fork
        bomb's leftovers would otherwise count against the next submission's limits."""
        if self.uid is None or self._claim is None:  # a user not claimed may be another grader's
            return
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            living, zombies = _processes_of(self.uid)
            if living:
                subprocess.run([self.python, "-m", "autograder.jail", "--kill-all", str(self.uid)],
                               capture_output=True, timeout=30)
            elif not zombies:  # zombies still count against the user's process limit until reaped
                return
            for pid in zombies:  # a kernel interrupted mid-start is the grader's own child: reap it
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass
            time.sleep(0.05)


def _processes_of(uid: int) -> tuple[list[int], list[int]]:
    """Processes whose real user is ``uid``: living ones, and zombies."""
    living: list[int] = []
    zombies: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if fields.get("Uid", "").split()[:1] == [str(uid)]:
            (zombies if fields.get("State", "").strip().startswith("Z") else living).append(int(entry.name))
    return living, zombies


SANDBOXES = ("auto", "docker", "local")


def make_sandbox(kind: str = "auto", *, image: str | None = None) -> Sandbox:
    """The backend by name; ``auto`` is Docker when its engine and the grading image are
    here, else local."""
    if kind == "local":
        return LocalSandbox()
    from .docker_sandbox import DEFAULT_IMAGE, DockerSandbox  # noqa: PLC0415 (needs the docker SDK)

    docker = DockerSandbox(image or DEFAULT_IMAGE)
    if kind == "docker":
        return docker
    if kind != "auto":
        raise UsageError(f"--sandbox {kind!r}: expected one of {', '.join(SANDBOXES)}")
    try:
        docker.check()
    except GraderError:
        return LocalSandbox()
    return docker


def parse_memory(text: str) -> int:
    """Megabytes from 8g, 512m or a plain number of megabytes."""
    value = text.strip().lower().removesuffix("b")
    scale = {"g": 1024, "m": 1, "t": 1024 * 1024}.get(value[-1:], None)
    number = value[:-1] if scale else value
    try:
        megabytes = float(number) * (scale or 1)
    except ValueError:
        raise UsageError(f"--memory {text!r}: expected a size such as 8g or 512m") from None
    if megabytes < 64:
        raise UsageError(f"--memory {text!r}: a kernel needs at least 64m")
    return int(megabytes)


def private_dir(prefix: str = "autograder-") -> Path:
    """A fresh folder for the grader's own per-kernel files (sockets, connection file)."""
    return Path(tempfile.mkdtemp(prefix=prefix))
