"""Templates are the references with solutions stripped; stale ones are caught."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest

from autograder.course.assignment import Assignment
from autograder.course.templates import generate, stale, strip_solutions

from .conftest import ROOT


def test_solutions_are_replaced_and_outputs_cleared():
    nb = nbformat.v4.new_notebook()
    code = nbformat.v4.new_code_cell(
        "def f(x):\n    # BEGIN SOLUTION\n    return x + 1\n    # END SOLUTION\nanswer = f(2)  # SOLUTION"
    )
    code.outputs = [nbformat.v4.new_output("stream", text="3\n")]
    code.execution_count = 4
    prompt = nbformat.v4.new_markdown_cell("_Type your answer here, replacing this text._")
    solution = nbformat.v4.new_markdown_cell("The answer is 3.")
    solution.metadata["tags"] = ["otter_assign_solution_cell"]
    nb.cells = [code, prompt, solution]
    template = strip_solutions(nb)
    assert [c.cell_type for c in template.cells] == ["code", "markdown"]
    assert template.cells[0].source == "def f(x):\n    ...\nanswer = ..."
    assert template.cells[0].outputs == [] and template.cells[0].execution_count is None
    assert "return x + 1" not in nbformat.writes(template) and "The answer is 3" not in nbformat.writes(template)


def _copy_project(tmp_path: Path) -> Assignment:
    for folder in ("rubrics", "reference_solutions", "student_templates"):
        shutil.copytree(ROOT / folder / "ece4179-2023", tmp_path / folder / "ece4179-2023")
    return Assignment(tmp_path / "rubrics" / "ece4179-2023" / "rubric.yaml", home=tmp_path)


def test_a_template_behind_its_reference_is_stale_until_regenerated(tmp_path: Path):
    assignment = _copy_project(tmp_path)
    assert stale(assignment) == []
    reference = assignment.reference_dir / "Q3_regression.ipynb"
    nb = nbformat.read(reference, as_version=4)
    nb.cells[0].source += "\n\nA new sentence in the introduction."
    nbformat.write(nb, reference)
    (problem,) = stale(assignment)
    assert "Q3_regression.ipynb differs from its reference" in problem
    generate(assignment)
    assert stale(assignment) == []


def test_changed_public_data_is_stale(tmp_path: Path):
    assignment = _copy_project(tmp_path)
    path = assignment.public_data_dir / "Task1_1.npz"
    with np.load(path) as stored:
        arrays = dict(stored)
    arrays["Y_val"] = arrays["Y_val"] + 1
    np.savez(path, **arrays)
    assert any("Task1_1.npz" in problem for problem in stale(assignment))


def test_no_solution_text_reaches_the_templates():
    templates = ROOT / "student_templates" / "ece4179-2023"
    for path in templates.glob("*.ipynb"):
        text = path.read_text(encoding="utf-8")
        for marker in ("SOLUTION", "otter_assign_solution_cell", "np.linalg.solve", "relu_grad_5 ="):
            assert marker not in text, (path.name, marker)


def test_public_data_rounded_differently_is_current_but_a_small_change_is_stale(tmp_path: Path):
    """Another numpy may round a generator's float arithmetic in the last place; that is
    the same data. A change a student could see is not."""
    assignment = _copy_project(tmp_path)
    path = assignment.public_data_dir / "Task1_1.npz"
    with np.load(path) as stored:
        arrays = dict(stored)
    np.savez(path, **{**arrays, "Y_val": np.nextafter(arrays["Y_val"], np.inf)})
    assert stale(assignment) == []
    np.savez(path, **{**arrays, "Y_val": arrays["Y_val"] + 1e-6})
    assert any("Task1_1.npz" in problem for problem in stale(assignment))
    np.savez(path, **{**arrays, "Y_val": arrays["Y_val"].astype(np.float32)})
    assert any("Task1_1.npz" in problem for problem in stale(assignment))


def test_without_the_authoring_extra_generating_templates_says_what_to_install(monkeypatch: pytest.MonkeyPatch):
    from autograder.errors import UsageError

    monkeypatch.setitem(sys.modules, "otter.assign.assignment", None)  # as where otter-grader is not installed
    with pytest.raises(UsageError, match=r"pip install 'autograder\[authoring\]'"):
        strip_solutions(nbformat.v4.new_notebook())
