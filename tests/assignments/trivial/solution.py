"""The toy assignment's solution, as notebook cells: it earns every automatic point.
The engine's tests and bench/overhead.py both build notebooks from it."""

from __future__ import annotations

from pathlib import Path

import nbformat

CELLS = [
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


def write_solution(path: Path) -> Path:
    return write_notebook(path, *CELLS)
