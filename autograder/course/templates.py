"""Student templates, generated from the reference solutions with otter-grader's
solution stripping, and the public data students receive with them.

Solution markers in reference notebooks (otter's conventions):
  ``# BEGIN SOLUTION`` ... ``# END SOLUTION``   the block becomes ``...``
  ``name = value  # SOLUTION``                  becomes ``name = ...``
  markdown cells tagged ``otter_assign_solution_cell`` are removed (put the prompt,
  e.g. "_Type your answer here, replacing this text._", in the cell before).
Outputs are cleared. An assignment whose rubric folder has a ``datagen.py`` defining
``public_files()`` (file name -> arrays) also gets those files written as ``.npz`` into
its public data folder.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import numpy as np
from nbformat import NotebookNode

from ..errors import AssignmentError, UsageError
from .assignment import Assignment

DATAGEN = "datagen"


def strip_solutions(nb: NotebookNode) -> NotebookNode:
    """A copy of ``nb`` with solutions replaced by prompts and outputs cleared."""
    try:
        from otter.assign.assignment import Assignment as OtterConfig  # imports in 0.8 s
        from otter.assign.solutions import strip_solutions_and_output
    except ImportError:
        raise UsageError("generating templates needs otter-grader, which students and Gradescope do not install: "
                         "pip install 'autograder[authoring]' (or -e '.[authoring]' in a checkout)") from None

    config = OtterConfig()
    config.strip_solutions_from_all_cells = True
    config.lang = "python"
    return strip_solutions_and_output(config, nb)


def _references(assignment: Assignment) -> list[Path]:
    found = sorted(assignment.reference_dir.glob("*.ipynb"))
    if not found:
        raise AssignmentError(f"{assignment.id} has no reference notebooks in {assignment.reference_dir}")
    return found


def render_templates(assignment: Assignment) -> dict[str, str]:
    """Template file name -> notebook text, as generation would write it."""
    rendered = {}
    for reference in _references(assignment):
        try:
            nb = nbformat.read(reference, as_version=4)
        except Exception as error:  # nbformat raises several kinds for a broken file
            raise AssignmentError(f"{reference}: not a readable notebook ({error})") from None
        rendered[reference.name] = nbformat.writes(strip_solutions(nb))
    return rendered


def _public_arrays(assignment: Assignment) -> dict[str, dict[str, np.ndarray]]:
    if not (assignment.folder / f"{DATAGEN}.py").is_file():
        return {}
    public_files = getattr(assignment.module(DATAGEN), "public_files", None)  # a datagen may make none
    return public_files() if callable(public_files) else {}


def generate(assignment: Assignment) -> list[Path]:
    """Write the templates and the public data; return what was written."""
    written = []
    assignment.templates_dir.mkdir(parents=True, exist_ok=True)
    for name, text in render_templates(assignment).items():
        path = assignment.templates_dir / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    arrays = _public_arrays(assignment)
    if arrays:
        folder = assignment.public_data_dir
        if folder is None:
            raise AssignmentError(f"{assignment.id}: datagen.py makes public files but the rubric names no data folder")
        folder.mkdir(parents=True, exist_ok=True)
        for name, content in arrays.items():
            np.savez(folder / name, **content)  # type: ignore[arg-type]  # numpy's stub types **kwds as bool
            written.append(folder / name)
    return written


def _same_array(stored: np.ndarray, generated: np.ndarray) -> bool:
    """Equal, floats to within a few units in the last place: another numpy or CPU may round
    a generator's arithmetic differently without the data being any other."""
    if stored.dtype != generated.dtype or stored.shape != generated.shape:
        return False
    if np.issubdtype(generated.dtype, np.inexact):
        return bool(np.allclose(stored, generated, rtol=1e-12, atol=1e-12, equal_nan=True))
    return bool(np.array_equal(stored, generated))


def stale(assignment: Assignment) -> list[str]:
    """What differs between the committed templates and data and what generation gives."""
    problems = []
    expected = render_templates(assignment)
    for name, text in expected.items():
        path = assignment.templates_dir / name
        if not path.is_file():
            problems.append(f"{path} is missing")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"{path} differs from its reference {assignment.reference_dir / name}")
    extra = {p.name for p in assignment.templates_dir.glob("*.ipynb")} - set(expected)
    problems += [f"{assignment.templates_dir / name} has no reference notebook" for name in sorted(extra)]
    folder = assignment.public_data_dir
    for name, content in _public_arrays(assignment).items():
        path = folder / name if folder else Path(name)
        try:
            with np.load(path) as stored:
                same = set(stored.files) == set(content) and all(
                    _same_array(stored[key], value) for key, value in content.items()
                )
        except OSError:
            same = False
        if not same:
            problems.append(f"{path} is missing or differs from what datagen.py generates")
    return problems
