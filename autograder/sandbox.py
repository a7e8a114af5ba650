"""Where a student's kernel runs.

A sandbox turns a working directory into a started-but-unconnected kernel manager.
The local sandbox runs the kernel as a child process of the grader, in the submission's
own working directory, talking over IPC sockets kept in a folder the student's files do
not share.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from jupyter_client.manager import AsyncKernelManager

#: Environment the kernel gets on top of the grader's own.
KERNEL_ENV = {
    "PYTHONUNBUFFERED": "1",
    "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    "MPLBACKEND": "module://matplotlib_inline.backend_inline",
}


class _OneSpec(KernelSpecManager):
    """A spec manager that knows exactly one kernel: the one the sandbox defines."""

    def __init__(self, spec: KernelSpec, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._spec = spec

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        return self._spec


class LocalSandbox:
    """The kernel runs as a subprocess of the grader, with the grader's Python."""

    name = "local"

    def __init__(self, python: str | None = None) -> None:
        self.python = python or sys.executable

    def kernel_spec(self) -> KernelSpec:
        return KernelSpec(
            argv=[self.python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            display_name="autograder (local)",
            language="python",
            resource_dir="",
        )

    def kernel_env(self, workdir: Path) -> dict[str, str]:
        env = dict(os.environ)
        env.update(KERNEL_ENV)
        env["HOME"] = str(workdir)
        return env

    def kernel_manager(self, private_dir: Path) -> AsyncKernelManager:
        """A kernel manager whose sockets and connection file live in ``private_dir``."""
        manager = AsyncKernelManager(
            kernel_name="autograder",
            transport="ipc",
            ip=str(private_dir / "kernel"),
            connection_file=str(private_dir / "kernel.json"),
        )
        manager.kernel_spec_manager = _OneSpec(self.kernel_spec())
        return manager


def private_dir(prefix: str = "autograder-") -> Path:
    """A fresh folder for the grader's own per-kernel files (sockets, connection file)."""
    return Path(tempfile.mkdtemp(prefix=prefix))
