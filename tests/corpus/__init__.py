"""Notebooks written the way the courses' own students write them (``../shared/assignments/
real-courses.md``): their own names, the courses' data files and layouts, one import cell
with ``%load_ext lab_black`` and a pip line, train-then-reload, a name rebound across tasks.
Each assignment's folder holds a folder per student, its notebooks as IPython scripts in the percent format
(``# %%`` starts a code cell, ``# %% [markdown]`` a Markdown one: readable in a review,
built into notebooks here), and ``expected.yaml``: for every automatic item, the points a
careful marker gives that student, and the items the grader must send to a marker
instead (``referred``). ``tests/test_corpus.py`` grades them; ``bench/corpus.py`` prints
the share of the marker's points the grader awards."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import nbformat
import yaml

CORPUS = Path(__file__).resolve().parent


def notebook(script: Path) -> nbformat.NotebookNode:
    """The notebook a percent script stands for."""
    cells = []
    for block in re.split(r"^# %%", script.read_text(encoding="utf-8"), flags=re.M)[1:]:
        head, _, body = block.partition("\n")
        body = body.strip("\n")
        if "[markdown]" in head:
            text = "\n".join(line[2:] if line.startswith("# ") else line.lstrip("#") for line in body.splitlines())
            cells.append(nbformat.v4.new_markdown_cell(text))
        else:
            cells.append(nbformat.v4.new_code_cell(body))
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def submission(assignment: str, student: str, folder: Path) -> Path:
    """The student's notebooks written into ``folder``, as they would hand them in."""
    folder.mkdir(parents=True, exist_ok=True)
    for script in sorted((CORPUS / assignment / student).glob("*.ipy")):
        nbformat.write(notebook(script), folder / f"{script.stem}.ipynb")
    return folder


def expected(assignment: str) -> dict[str, Any]:
    """``{student: {"about", "marker": {item: points}, "referred": [items]}}``."""
    return yaml.safe_load((CORPUS / assignment / "expected.yaml").read_text(encoding="utf-8"))


def cases() -> list[tuple[str, str]]:
    return [(folder.name, student) for folder in sorted(CORPUS.iterdir()) if (folder / "expected.yaml").is_file()
            for student in expected(folder.name)]
