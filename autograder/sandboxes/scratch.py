"""The grader's temporary folders, one parent per grader process.

Staged submissions, kernels' private folders and data views live under
``$TMPDIR/autograder-run-<pid>/`` (mode 0711: the sandbox user may pass through to the
folders handed to it, never list them). A grader that was killed leaves its parent
behind; the next grader on the machine removes every parent whose process is gone.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

PREFIX = "autograder-run-"


def _parent() -> Path:
    return Path(tempfile.gettempdir())


def run_dir() -> Path:
    """This process's parent folder for temporary grading folders."""
    folder = _parent() / f"{PREFIX}{os.getpid()}"
    folder.mkdir(mode=0o711, exist_ok=True)
    return folder


def make_temp(prefix: str) -> Path:
    """A fresh folder under this process's parent folder."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir=run_dir()))


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale() -> list[Path]:
    """Remove the parent folders of graders that are no longer running; return them."""
    removed = []
    for folder in _parent().glob(f"{PREFIX}*"):
        pid = folder.name.removeprefix(PREFIX)
        if pid.isdigit() and not alive(int(pid)) and folder.is_dir() and not folder.is_symlink():
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed
