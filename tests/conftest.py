"""Shared helpers: notebooks built in code, the toy assignment, the real command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from autograder.assignment import Assignment, load_assignment

ROOT = Path(__file__).resolve().parents[1]
TRIVIAL = ROOT / "tests" / "assignments" / "trivial"

#: The toy assignment's solution: every automatic item earned.
TRIVIAL_CELLS = [
    "import numpy as np\nanswer = 6 * 7",
    "def double(x):\n    return np.asarray(x) * SCALE",
    "def classify(x):\n    return (np.asarray(x) > 0).astype(int)",
]


def notebook(*cells: str, parameters: str | None = None) -> nbformat.NotebookNode:
    """A v4 notebook of code cells; ``parameters`` becomes a first cell tagged ``parameters``."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    if parameters is not None:
        cell = nbformat.v4.new_code_cell(parameters)
        cell.metadata["tags"] = ["parameters"]
        nb.cells.append(cell)
    nb.cells.extend(nbformat.v4.new_code_cell(source) for source in cells)
    return nb


def write_notebook(path: Path, *cells: str, parameters: str | None = "SCALE = 1") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook(*cells, parameters=parameters), path)
    return path


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """The real ``autograder`` command, in a fresh process."""
    return subprocess.run(
        [sys.executable, "-m", "autograder", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        env={**__import__("os").environ, "COLUMNS": "200"},
    )


@pytest.fixture
def trivial() -> Assignment:
    return load_assignment(TRIVIAL)
